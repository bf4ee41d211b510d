"""Quality against ground truth: accuracy, F1, ROC AUC, log loss; MAE and RMSE.

Per model, over the window's requests that have both a label and a good score from that
model (so models can differ in ``n``; paired tests in :mod:`.stats` use common requests).
scikit-learn computes F1 and ROC AUC when installed; otherwise numpy does, with the same
definitions (F1 counts 0 when a class is never predicted nor present, as with
``zero_division=0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from .joined import Joined
from .task import Task, is_number

__all__ = ["Quality", "quality"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# What scikit-learn clips probabilities to since 1.5: a confident miss costs a large but
# finite loss, so one such request cannot make a model's log loss infinite.
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, slots=True)
class Quality:
    """One model's quality over ``n`` labelled requests; None where a metric does not apply."""

    n: int
    accuracy: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    log_loss: float | None = None
    mae: float | None = None
    rmse: float | None = None


def quality(joined: Joined, task: Task, model: str) -> Quality:
    rows = []
    for request in joined.requests:
        if request.id not in joined.labels:
            continue
        score = joined.ok(model, request.id)
        if score is not None:
            rows.append((joined.labels[request.id], score))
    if task.kind == "regression":
        pairs = [(float(s.prediction), float(y)) for y, s in rows if is_number(s.prediction)]
        pairs = [(p, y) for p, y in pairs if is_number(y)]
        return _regression(np.array(pairs, dtype=np.float64).reshape(-1, 2))
    if not rows:
        return Quality(0)

    codes: dict[Any, int] = {c: i for i, c in enumerate(task.classes)}
    y_true = np.array([codes.setdefault(y, len(codes)) for y, _ in rows], dtype=np.int64)
    y_pred = np.array([codes.setdefault(s.prediction, len(codes)) for _, s in rows], np.int64)
    binary = task.binary and task.positive is not None
    sk = _sklearn_metrics()

    f1 = _f1(y_true, y_pred, codes[task.positive] if binary else None, sk)
    roc_auc = None
    if binary:
        p_pos = [task.probability(model, s, task.positive) for _, s in rows]
        if all(p is not None for p in p_pos):
            roc_auc = _roc_auc(y_true == codes[task.positive], np.array(p_pos, np.float64), sk)
    p_true = [task.probability(model, s, y) for y, s in rows]
    log_loss = None
    if all(p is not None for p in p_true):
        clipped = np.clip(np.array(p_true, dtype=np.float64), _EPS, 1.0)
        log_loss = float(-np.mean(np.log(clipped)))
    return Quality(
        n=len(rows),
        accuracy=float(np.mean(y_true == y_pred)),
        f1=f1,
        roc_auc=roc_auc,
        log_loss=log_loss,
    )


def _regression(pairs: FloatArray) -> Quality:
    if len(pairs) == 0:
        return Quality(0)
    errors = pairs[:, 0] - pairs[:, 1]
    return Quality(
        n=len(pairs),
        mae=float(np.mean(np.abs(errors))),
        rmse=math.sqrt(float(np.mean(errors**2))),
    )


def _sklearn_metrics() -> ModuleType | None:
    try:
        from sklearn import metrics
    except ImportError:
        return None
    module: ModuleType = metrics
    return module


def _f1(y_true: IntArray, y_pred: IntArray, positive: int | None, sk: ModuleType | None) -> float:
    """Binary F1 of ``positive``, or macro F1 over the classes present in either array."""
    present = np.union1d(y_true, y_pred)
    if sk is not None:
        if positive is not None:
            # labels=[positive] rather than average="binary": a model predicting a class
            # outside the label set still gets a binary F1 instead of an exception.
            return float(
                sk.f1_score(y_true, y_pred, labels=[positive], average="macro", zero_division=0)
            )
        return float(sk.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    labels = [positive] if positive is not None else list(present)
    per_class = []
    for c in labels:
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        wrong = int(np.sum((y_pred == c) != (y_true == c)))  # false positives + negatives
        per_class.append(2 * tp / (2 * tp + wrong) if tp or wrong else 0.0)
    return float(np.mean(per_class))


def _roc_auc(
    is_positive: npt.NDArray[np.bool_], p_pos: FloatArray, sk: ModuleType | None
) -> float | None:
    n_pos = int(np.sum(is_positive))
    n_neg = len(is_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None  # undefined with one class only
    if sk is not None:
        return float(sk.roc_auc_score(is_positive, p_pos))
    # Mann-Whitney: the chance a random positive outscores a random negative, ties half.
    ranks = _average_ranks(p_pos)
    return float((np.sum(ranks[is_positive]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: FloatArray) -> FloatArray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of each distinct value's last occurrence (1-based)
    mean_rank = ends - (counts - 1) / 2.0
    return np.asarray(mean_rank[inverse], dtype=np.float64)
