"""What the compared models predict, and how to read their scores as numbers.

A :class:`Task` says whether the window is classification or regression, the label set in
order, the positive class of a binary task, and for each model which class each of its
probability columns stands for. It is resolved once per comparison so every metric reads
scores the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError
from ..messages import Score
from .joined import Joined

__all__ = ["Task", "TaskKind", "is_number", "resolve_task", "sort_labels"]

TaskKind = Literal["classification", "regression"]
TASK_KINDS: tuple[TaskKind, ...] = ("classification", "regression")


@dataclass(frozen=True, slots=True)
class Task:
    kind: TaskKind
    classes: tuple[Any, ...] = ()  # the label set, in order (classification only)
    positive: Any = None  # the positive class (binary classification only)
    columns: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # model -> classes

    @property
    def binary(self) -> bool:
        return self.kind == "classification" and len(self.classes) == 2

    def has_probabilities(self, model: str) -> bool:
        return model in self.columns

    def probability(self, model: str, score: Score, label: Any) -> float | None:
        """The probability ``model`` gave ``label`` in ``score``, when it can be known."""
        classes = self.columns.get(model)
        probs = score.probabilities
        if classes is None or probs is None or len(probs) != len(classes):
            return None
        for cls, p in zip(classes, probs, strict=True):
            if cls == label:
                return float(p)
        return None


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is a class label here, not a quantity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sort_labels(values: Iterable[Any]) -> tuple[Any, ...]:
    """Distinct labels in scikit-learn's order (ascending); numbers before strings."""
    distinct: dict[Any, None] = dict.fromkeys(values)  # 1, 1.0 and True are one label
    return tuple(sorted(distinct, key=_label_key))


def _label_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, repr(value))


def resolve_task(
    joined: Joined,
    *,
    kind: TaskKind | None = None,
    classes: Mapping[str, Sequence[Any]] | None = None,
    positive: Any = None,
) -> Task:
    """The task of the window: as given, or inferred from labels and scores.

    ``classes`` maps model names to the classes their probability columns stand for (what
    a loaded model's ``info.classes`` says). Without them a model's columns are taken to be
    the label set in ascending order, scikit-learn's convention, when the widths match.
    """
    if kind is not None and kind not in TASK_KINDS:
        raise InputError(f"expected one of {list(TASK_KINDS)}, got {kind!r}", loc="task")
    classes = classes or {}
    ok = {m: [s for s in joined.scores[m].values() if s.ok] for m in joined.models}
    labels = list(joined.labels.values())
    if kind is None:
        kind = _infer_kind(labels, [s for scores in ok.values() for s in scores])
    if kind == "regression":
        return Task("regression")

    champion_classes = classes.get(_name(joined.champion))
    if champion_classes is not None:
        label_set = tuple(champion_classes)
    else:
        # The champion's predictions and the labels, not every model's: a stray class from a
        # bad challenger must not turn a binary task into a multiclass one.
        label_set = sort_labels([*labels, *(s.prediction for s in ok[joined.champion])])
    if positive is None and len(label_set) == 2:
        positive = label_set[-1]
    columns: dict[str, tuple[Any, ...]] = {}
    for model, scores in ok.items():
        given = classes.get(_name(model))
        widths = {len(s.probabilities) for s in scores if s.probabilities is not None}
        if given is not None:
            columns[model] = tuple(given)
        elif widths == {len(label_set)}:
            columns[model] = label_set
    return Task("classification", label_set, positive, columns)


def _infer_kind(labels: Sequence[Any], scores: Sequence[Score]) -> TaskKind:
    if any(s.probabilities is not None for s in scores):
        return "classification"
    values = [*labels, *(s.prediction for s in scores)]
    # A regressor's predictions are almost never whole numbers; class labels always are.
    if any(isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in values):
        return "regression"
    return "classification"


def _name(model: str) -> str:
    return model.partition("@")[0]
