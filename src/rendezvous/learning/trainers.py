"""How a candidate version is made: refit a batch estimator, or copy an online one.

A trainer never touches what is serving: scikit-learn estimators are cloned and fitted
afresh on the training window; a River estimator learns one example at a time in a private
working copy, and a candidate is a deep copy of it at that moment.
"""

from __future__ import annotations

import copy
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .predictors import Predictor, RiverPredictor, sklearn_predictor
from .rows import Row, Task

__all__ = ["BatchTrainer", "Candidate", "OnlineTrainer", "Trainer"]


@dataclass(frozen=True)
class Candidate:
    predictor: Predictor
    trained_on: int
    notes: tuple[str, ...] = ()


class Trainer(ABC):
    """``label`` names the kind for reports; ``task`` is regression or classification."""

    def __init__(self, template: Any, task: Task, label: str) -> None:
        self.template = template
        self.task: Task = task
        self.label = label
        self.n_features: int | None = None  # set by the engine once known

    def initial(self) -> Predictor | None:
        """What to serve as version 1 at registration, if anything."""
        return None

    @abstractmethod
    def learn_one(self, row: Row, target: Any) -> None:
        """See one training example as it arrives."""

    @abstractmethod
    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        """A drift made past learning obsolete: start again from ``rows`` only."""

    @abstractmethod
    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> Candidate:
        """A new fitted predictor, trained on the window ``rows``/``targets``."""


class BatchTrainer(Trainer):
    """A scikit-learn estimator (or any with ``get_params``/``fit``/``predict``)."""

    def initial(self) -> Predictor | None:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(self.template)
        except NotFittedError:
            return None
        # A private copy: the user keeps theirs and may refit it without touching serving.
        return sklearn_predictor(copy.deepcopy(self.template), self.task)

    def learn_one(self, row: Row, target: Any) -> None:
        pass  # a batch estimator learns only when refitted on the whole window

    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        pass  # each candidate is a fresh clone: nothing learnt carries over anyway

    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> Candidate:
        estimator, notes = self.fit(rows, targets)
        return Candidate(sklearn_predictor(estimator, self.task), len(rows), notes)

    def fit(self, rows: Sequence[Row], targets: Sequence[Any]) -> tuple[Any, tuple[str, ...]]:
        """A fresh clone of the template fitted on ``rows``, and notes from fitting it."""
        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        estimator = clone(self.template)
        x = np.asarray(rows, dtype=float)
        y = np.asarray(targets, dtype=float if self.task == "regression" else None)
        # A solver stopping at max_iterations still gives a usable model: record it as a
        # note on the version rather than fail the training. Every other warning keeps the
        # caller's filters. (catch_warnings swaps process-wide state; only this training
        # thread enters it, and only around fit.)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            estimator.fit(x, y)
        notes = tuple(
            f"{w.category.__name__}: {w.message}"
            for w in caught
            if issubclass(w.category, ConvergenceWarning)
        )
        return estimator, notes


class OnlineTrainer(Trainer):
    """A River estimator: ``learn_one`` on a working copy; candidates are deep copies of it.

    River sees a row as ``{key: value}``: keyed by position, or by ``features`` (names) for
    an estimator that a deployment serves by feature name. ``working`` starts the working
    copy from an estimator that has learnt already (the serving version).
    """

    def __init__(
        self,
        template: Any,
        task: Task,
        label: str,
        *,
        features: Sequence[str] | None = None,
        working: Any = None,
    ) -> None:
        super().__init__(template, task, label)
        self._keys: Sequence[Any] | None = tuple(features) if features is not None else None
        self._working = copy.deepcopy(template if working is None else working)
        self._learnt = 0

    def snapshot(self) -> Any:
        """A private copy of the working estimator as it is now."""
        return copy.deepcopy(self._working)

    def initial(self) -> Predictor | None:
        # River models predict from the first example on, so the given model serves at once.
        return RiverPredictor(copy.deepcopy(self.template), self.task, self.n_features)

    def learn_one(self, row: Row, target: Any) -> None:
        x = dict(enumerate(row)) if self._keys is None else dict(zip(self._keys, row, strict=True))
        self._working.learn_one(x, target)
        self._learnt += 1

    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        self._working = self.template.clone()
        self._learnt = 0
        for row, target in zip(rows, targets, strict=True):
            self.learn_one(row, target)

    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> Candidate:
        predictor = RiverPredictor(copy.deepcopy(self._working), self.task, self.n_features)
        return Candidate(predictor, self._learnt)
