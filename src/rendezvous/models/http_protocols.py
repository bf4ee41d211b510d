"""The wire formats an :class:`~rendezvous.models.http.HttpModel` speaks.

A protocol turns a batch into a request body and an answer back into an :class:`Output`;
``decode`` raises ``ValueError`` / ``TypeError`` / ``KeyError`` on a body it cannot read,
which the model reports as a :class:`~rendezvous.errors.ModelError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from ..messages import Prediction
from .base import Matrix, Output

__all__ = ["PROTOCOLS", "MlflowProtocol", "OipProtocol", "Protocol"]


class Protocol(ABC):
    def __init__(self, input_name: str = "input") -> None:
        self.input_name = input_name

    @abstractmethod
    def encode(self, rows: Matrix, features: Sequence[str]) -> bytes:
        """The request body for ``rows``."""

    @abstractmethod
    def decode(self, data: Any) -> Output:
        """Predictions (and probabilities) from the parsed JSON answer."""


class MlflowProtocol(Protocol):
    """MLflow's ``/invocations`` scoring protocol, ``dataframe_split`` orientation."""

    def encode(self, rows: Matrix, features: Sequence[str]) -> bytes:
        body = {"dataframe_split": {"columns": list(features), "data": _contiguous(rows)}}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, data: Any) -> Output:
        items = data.get("predictions") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise ValueError("expected {'predictions': [...]} or a list of predictions")
        predictions: list[Prediction] = []
        probabilities: list[list[float]] = []
        for item in items:
            if isinstance(item, Mapping):
                if "prediction" not in item:
                    raise KeyError(f"a prediction object needs a 'prediction' key: {item}")
                predictions.append(_scalar(item["prediction"]))
                if item.get("probabilities") is not None:
                    probabilities.append([float(p) for p in item["probabilities"]])
            elif isinstance(item, list) and len(item) == 1:  # one-column output
                predictions.append(_scalar(item[0]))
            else:
                predictions.append(_scalar(item))
        if probabilities and len(probabilities) != len(predictions):
            raise ValueError("probabilities given for some predictions only")
        return Output(predictions, probabilities or None)


class OipProtocol(Protocol):
    """The Open Inference Protocol (KServe V2): one FP64 input tensor, named outputs."""

    def encode(self, rows: Matrix, features: Sequence[str]) -> bytes:
        tensor = {
            "name": self.input_name,
            "shape": list(rows.shape),
            "datatype": "FP64",
            "data": _contiguous(rows).ravel(),
        }
        return orjson.dumps({"inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, data: Any) -> Output:
        outputs = data["outputs"] if isinstance(data, Mapping) else None
        if not isinstance(outputs, list) or not outputs:
            raise ValueError("expected {'outputs': [...]} with at least one output")
        label = next((o for o in outputs if not _is_proba(o)), None)
        proba = next((o for o in outputs if _is_proba(o)), None)
        if label is None:
            raise ValueError("no predictions output (only probabilities)")
        predictions = [_scalar(v) for v in _flat(label["data"])]
        probabilities = None
        if proba is not None:
            flat = [float(v) for v in _flat(proba["data"])]
            shape = proba.get("shape") or [len(predictions), -1]
            width = int(shape[-1]) if len(shape) > 1 else 1
            if width <= 0 or len(flat) % width:
                raise ValueError(f"probabilities of shape {shape} hold {len(flat)} values")
            probabilities = [flat[i : i + width] for i in range(0, len(flat), width)]
        return Output(predictions, probabilities)


PROTOCOLS: dict[str, type[Protocol]] = {"mlflow": MlflowProtocol, "oip": OipProtocol}


def _is_proba(output: Mapping[str, Any]) -> bool:
    return "prob" in str(output.get("name", "")).lower()


def _flat(data: Any) -> list[Any]:
    # The protocol sends tensors flat, but some servers nest them row by row.
    return np.asarray(data, dtype=object).ravel().tolist()


def _contiguous(rows: Matrix) -> Matrix:
    return np.ascontiguousarray(rows, dtype=np.float64)


def _scalar(value: Any) -> Prediction:
    if value is None or isinstance(value, int | float | str | bool):
        return value
    raise TypeError(f"a prediction must be a number, string or boolean, got {value!r}")
