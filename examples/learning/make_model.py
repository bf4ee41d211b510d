"""Write lin.joblib: a LinearRegression fitted on y = x (the world before it changes)."""

from pathlib import Path

import joblib
from sklearn.linear_model import LinearRegression

here = Path(__file__).parent
xs = [[float(x)] for x in range(10)]
joblib.dump(LinearRegression().fit(xs, [x[0] for x in xs]), here / "lin.joblib")
print(f"wrote {here / 'lin.joblib'}")
