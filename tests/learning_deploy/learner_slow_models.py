"""A regressor whose training can be caught in the middle, for the learner-process tests.

It fits like ``LinearRegression``; but while the file named by ``gate`` exists, ``fit``
first writes ``<gate>.started`` and waits for the gate to go. A test opens the gate to let
trainings through, or closes it to hold one (and kill the learner during it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression


class GatedRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    def __init__(self, gate: str = "") -> None:
        self.gate = gate

    def fit(self, x: Any, y: Any) -> GatedRegressor:
        gate = Path(self.gate) if self.gate else None
        if gate is not None and gate.exists():
            Path(f"{gate}.started").write_text("training")
            while gate.exists():
                time.sleep(0.05)
        self.model_ = LinearRegression().fit(x, y)
        self.n_features_in_ = self.model_.n_features_in_
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.model_.predict(x)  # type: ignore[no-any-return]
