"""A deployment's model as its learner sees it: predict, learn, make a candidate, store it.

Two kinds learn (``LEARNING_KINDS`` in the config): a scikit-learn estimator is cloned and
refitted on the training window (:class:`~.trainers.BatchTrainer`); a River estimator keeps
learning one example at a time in a private working copy started from the serving version,
and a candidate is a snapshot of that copy (:class:`~.trainers.OnlineTrainer`). Rows are
given to River keyed by feature name, as the serving adapter gives them, so a published
snapshot serves exactly as it learnt.

Artifacts are what the registry's loader serves by file type: ``model.joblib`` for
scikit-learn, ``model.pkl`` for River.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Deployment, ModelConfig, ModelKind
from ..errors import ModelError
from .rows import Row, Task
from .trainers import BatchTrainer, OnlineTrainer

__all__ = ["Learnable", "make_learnable"]

Writer = Callable[[Path], object]


class Learnable(ABC):
    """One model's way of learning. ``template`` is the estimator the deployment file
    names: what a River model starts again from after a drift, and what a scikit-learn
    model is cloned from for every candidate."""

    def __init__(self, cfg: ModelConfig, deployment: Deployment, template: Any) -> None:
        self.name = cfg.name
        self.features = tuple(deployment.input_schema.names)
        self.template = template
        self.task: Task = self._task(template)

    @abstractmethod
    def _task(self, template: Any) -> Task: ...

    @abstractmethod
    def predict(self, estimator: Any, rows: Sequence[Row]) -> list[Any]:
        """One prediction per row (``None`` where an online model knows nothing yet)."""

    @abstractmethod
    def restart(self, serving: Any) -> None:
        """Continue learning from the serving version's estimator."""

    @abstractmethod
    def learn_one(self, row: Row, target: Any) -> None:
        """See one training example as it arrives."""

    @abstractmethod
    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        """A drift made what was learnt obsolete: start again from these examples only."""

    @abstractmethod
    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> tuple[Any, tuple[str, ...]]:
        """A new estimator from the window ``rows``/``targets``, and notes on its training."""

    @abstractmethod
    def artifact(self, estimator: Any) -> tuple[str, Writer]:
        """The file name to publish ``estimator`` under, and what writes it."""


class SklearnLearnable(Learnable):
    def __init__(self, cfg: ModelConfig, deployment: Deployment, template: Any) -> None:
        super().__init__(cfg, deployment, template)
        self._trainer = BatchTrainer(template, self.task, f"sklearn:{type(template).__name__}")

    def _task(self, template: Any) -> Task:
        from sklearn.base import is_classifier

        return "classification" if is_classifier(template) else "regression"

    def predict(self, estimator: Any, rows: Sequence[Row]) -> list[Any]:
        if not rows:
            return []
        return [_plain(p) for p in np.asarray(estimator.predict(np.asarray(rows))).ravel()]

    def restart(self, serving: Any) -> None:
        pass  # every candidate is a fresh clone of the template: nothing carries over

    def learn_one(self, row: Row, target: Any) -> None:
        pass  # a batch estimator learns only when refitted on the window

    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        pass

    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> tuple[Any, tuple[str, ...]]:
        return self._trainer.fit(rows, targets)

    def artifact(self, estimator: Any) -> tuple[str, Writer]:
        import joblib

        return "model.joblib", lambda path: joblib.dump(estimator, path)


class RiverLearnable(Learnable):
    def __init__(self, cfg: ModelConfig, deployment: Deployment, template: Any) -> None:
        super().__init__(cfg, deployment, template)
        self._label = f"river:{type(template).__name__}"
        self._trainer = self._start(template)

    def _start(self, working: Any) -> OnlineTrainer:
        return OnlineTrainer(
            self.template, self.task, self._label, features=self.features, working=working
        )

    def _task(self, template: Any) -> Task:
        from river import base

        return "classification" if isinstance(template, base.Classifier) else "regression"

    def predict(self, estimator: Any, rows: Sequence[Row]) -> list[Any]:
        names = self.features
        return [_plain(estimator.predict_one(dict(zip(names, row, strict=True)))) for row in rows]

    def restart(self, serving: Any) -> None:
        self._trainer = self._start(serving)

    def learn_one(self, row: Row, target: Any) -> None:
        self._trainer.learn_one(row, target)

    def forget(self, rows: Sequence[Row], targets: Sequence[Any]) -> None:
        self._trainer.forget(rows, targets)

    def candidate(self, rows: Sequence[Row], targets: Sequence[Any]) -> tuple[Any, tuple[str, ...]]:
        return self._trainer.snapshot(), ()

    def artifact(self, estimator: Any) -> tuple[str, Writer]:
        def write(path: Path) -> None:
            with path.open("wb") as f:
                pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)

        return "model.pkl", write


def make_learnable(cfg: ModelConfig, deployment: Deployment, template: Any) -> Learnable:
    if cfg.kind is ModelKind.SKLEARN:
        return SklearnLearnable(cfg, deployment, template)
    if cfg.kind is ModelKind.RIVER:
        return RiverLearnable(cfg, deployment, template)
    raise ModelError(f"model '{cfg.name}': a {cfg.kind} model cannot learn")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
