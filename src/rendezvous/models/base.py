"""The Model interface: one required method, batch prediction over rows.

A model receives a float64 matrix of shape ``(n_rows, n_features)`` in the deployment's
feature order and returns one prediction per row, plus class probabilities when it has them.
Synchronous models (scikit-learn, ONNX Runtime, River, Python rules) subclass :class:`Model`
and run on their executor's own thread; models that wait on the network subclass
:class:`AsyncModel` and run on the event loop.

``version`` belongs to the model object itself: an executor reads it from the very object
that computed a score, so a swap can never attribute a score to the wrong version.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..messages import Prediction

__all__ = ["AsyncModel", "Matrix", "Model", "ModelInfo", "Output", "check_output"]

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a model is: its name, version, kind, the features it takes, its classes."""

    name: str
    version: str
    kind: str
    features: tuple[str, ...]
    classes: tuple[Any, ...] | None = None  # labels aligned with probabilities, if any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Output:
    """Predictions for a batch: one entry per row, probabilities aligned with ``info.classes``."""

    predictions: list[Prediction]
    probabilities: list[list[float]] | None = None


class _Base:
    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.name}@{self.info.version}>"


class Model(_Base, ABC):
    """A synchronous model. Subclasses implement :meth:`predict`; ``close`` is optional."""

    is_async = False

    @abstractmethod
    def predict(self, rows: Matrix) -> Output:
        """Predict every row of ``rows`` (shape ``(n, n_features)``)."""

    def close(self) -> None:
        """Release resources held by the model."""


class AsyncModel(_Base, ABC):
    """A model that waits on I/O (a remote endpoint): predicts on the event loop."""

    is_async = True

    @abstractmethod
    async def predict(self, rows: Matrix) -> Output:
        """Predict every row of ``rows`` (shape ``(n, n_features)``)."""

    async def aclose(self) -> None:
        """Release resources held by the model."""


# Predictions that need no conversion; bool is a subclass of int but type() tells them apart.
_PLAIN = frozenset({int, float, str, bool, type(None)})


def _scalar(value: Any) -> Prediction:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, int | float | str | bool):
        return value
    raise TypeError(f"expected a number, string or boolean, got {type(value).__name__}")


def check_output(output: Output, n_rows: int, info: ModelInfo) -> Output:
    """Validate what a model returned, so a broken model yields a clear error score.

    Converts numpy scalars to plain Python values.
    """
    preds = output.predictions
    if len(preds) != n_rows:
        raise ValueError(f"model returned {len(preds)} predictions for {n_rows} rows")
    # most adapters hand over ``tolist()`` output: one pass over the types, in C, says so
    plain = type(preds) is list and set(map(type, preds)) <= _PLAIN
    clean = preds if plain else [_scalar(p) for p in preds]
    probs = output.probabilities
    if probs is not None:
        if len(probs) != n_rows:
            raise ValueError(f"model returned {len(probs)} probability rows for {n_rows} rows")
        if info.classes is not None:
            width = len(info.classes)
            for got in set(map(len, probs)) - {width}:
                raise ValueError(f"expected {width} probabilities per row, got {got}")
    return Output(clean, probs)


def as_matrix(rows: Sequence[Sequence[float]]) -> Matrix:
    return np.asarray(rows, dtype=np.float64)
