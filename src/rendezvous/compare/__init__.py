"""Champion against challengers: live comparison, promotion tests, over archived traffic.

```
window.py        which requests: the last N, or [since, until)
joined.py        those requests with every compared model's score and their labels
task.py          classification or regression, the classes, how to read a score
operations.py    latency, errors, missing scores, answers served
labelled.py      quality against labels: accuracy, F1, ROC AUC, log loss; MAE, RMSE
differencing.py  without labels: agreement with the champion, where they differ most
stats.py         paired tests and the promotion decision
report.py        compare() → Comparison (to_dict() for JSON), render() for a terminal
```
"""

from __future__ import annotations

from .differencing import Agreement, Quantiles
from .joined import ModelRef
from .labelled import Quality
from .operations import Operations
from .report import Comparison, ModelReport, compare, pairs, render
from .stats import Decision, Pair, PromotionPolicy, evaluate, mcnemar
from .task import Task, TaskKind
from .window import Window

__all__ = [
    "Agreement",
    "Comparison",
    "Decision",
    "ModelRef",
    "ModelReport",
    "Operations",
    "Pair",
    "PromotionPolicy",
    "Quality",
    "Quantiles",
    "Task",
    "TaskKind",
    "Window",
    "compare",
    "evaluate",
    "mcnemar",
    "pairs",
    "render",
]
