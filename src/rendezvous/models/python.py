"""Python models by import string: business rules, estimator-like objects, batch functions.

``source: "fraud_rules:score"`` names an attribute of a module that sits next to the
deployment file (or anywhere on ``sys.path``). The attribute may be

* a function called once per row with ``{feature_name: value}``, returning a prediction
  or ``{"prediction": …, "probabilities": [...]}`` — plain business logic;
* an object (or a class, built with ``options.params``) with ``predict(X)`` and optionally
  ``predict_proba(X)`` and ``classes_``;
* a function taking the whole matrix, with ``options.mode: batch``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..config import Deployment, ModelConfig
from ..errors import ModelError, ModelLoadError
from ..messages import Prediction
from ._loading import check_options, import_attr, make_info, option_classes, text_version, where
from .base import Matrix, Model, ModelInfo, Output
from .sklearn import EstimatorModel, check_features, estimator_classes

__all__ = ["BatchFunctionModel", "RowFunction", "RowFunctionModel", "load_python"]

OPTIONS = {"mode", "params", "classes"}
MODES = ("row", "batch")

RowResult = Prediction | Mapping[str, Any]


class RowFunction(Protocol):
    """A rule: one row as ``{feature_name: value}`` in, one prediction (or mapping) out."""

    def __call__(self, row: dict[str, float], /) -> RowResult: ...


class RowFunctionModel(Model):
    def __init__(self, info: ModelInfo, fn: RowFunction) -> None:
        super().__init__(info)
        self.fn = fn

    def predict(self, rows: Matrix) -> Output:
        names = self.info.features
        predictions: list[Prediction] = []
        probabilities: list[list[float]] = []
        for row in rows.tolist():
            try:
                result = self.fn(dict(zip(names, row, strict=True)))
            except Exception as exc:
                raise ModelError(f"model '{self.name}': {type(exc).__name__}: {exc}") from exc
            if isinstance(result, Mapping):
                if "prediction" not in result:
                    raise ModelError(
                        f"model '{self.name}': a returned mapping needs a 'prediction' key, "
                        f"got keys {sorted(result)}"
                    )
                predictions.append(_plain(result["prediction"]))
                if result.get("probabilities") is not None:
                    probabilities.append([float(p) for p in result["probabilities"]])
            else:
                predictions.append(_plain(result))
        if probabilities and len(probabilities) != len(predictions):
            raise ModelError(f"model '{self.name}': returned probabilities for some rows only")
        return Output(predictions, probabilities or None)


class BatchFunctionModel(Model):
    """A function of the whole matrix: returns predictions, a mapping, or an :class:`Output`."""

    def __init__(self, info: ModelInfo, fn: Callable[[Matrix], Any]) -> None:
        super().__init__(info)
        self.fn = fn

    def predict(self, rows: Matrix) -> Output:
        try:
            result = self.fn(rows)
        except Exception as exc:
            raise ModelError(f"model '{self.name}': {type(exc).__name__}: {exc}") from exc
        if isinstance(result, Output):
            return result
        probabilities = None
        if isinstance(result, Mapping):
            if "predictions" not in result:
                raise ModelError(
                    f"model '{self.name}': a returned mapping needs a 'predictions' key, "
                    f"got keys {sorted(result)}"
                )
            if result.get("probabilities") is not None:
                probabilities = np.asarray(result["probabilities"], dtype=np.float64).tolist()
            result = result["predictions"]
        return Output(np.asarray(result).ravel().tolist(), probabilities)


def _plain(value: Any) -> Prediction:
    return value.item() if isinstance(value, np.generic) else value  # type: ignore[no-any-return]


def _version(source: str, module: ModuleType, obj: Any) -> str:
    # The module's whole source, so that editing a threshold next to the rule bumps the
    # version too; a compiled or interactive module falls back to the object's own source.
    for target in (module, obj if inspect.isroutine(obj) or inspect.isclass(obj) else type(obj)):
        try:
            return text_version(source, inspect.getsource(target))
        except (OSError, TypeError):
            continue
    return text_version(source, getattr(obj, "__qualname__", type(obj).__qualname__))


def load_python(cfg: ModelConfig, deployment: Deployment) -> Model:
    options = check_options(cfg, OPTIONS)
    mode = options.get("mode", "row")
    if mode not in MODES:
        raise ModelLoadError(f"{where(cfg)}: options.mode must be one of {MODES}, got {mode!r}")
    module, attr = import_attr(cfg, deployment)
    version = _version(cfg.source or "", module, attr)
    classes = option_classes(cfg)
    obj = _instantiate(cfg, attr)
    if callable(getattr(obj, "predict", None)):
        check_features(cfg, deployment, obj)
        classes = classes or estimator_classes(obj)
        return EstimatorModel(make_info(cfg, deployment, version, classes), obj)
    if not callable(obj):
        raise ModelLoadError(
            f"{where(cfg)}: '{cfg.source}' is a {type(obj).__name__}; expected a function or "
            "an object with a predict(X) method"
        )
    info = make_info(cfg, deployment, version, classes)
    if mode == "batch":
        return BatchFunctionModel(info, obj)
    return RowFunctionModel(info, obj)


def _instantiate(cfg: ModelConfig, attr: Any) -> Any:
    params = cfg.options.get("params")
    if not inspect.isclass(attr):
        if params is not None:
            raise ModelLoadError(
                f"{where(cfg)}: options.params is for a class; '{cfg.source}' is not a class"
            )
        return attr
    if params is not None and not isinstance(params, Mapping):
        raise ModelLoadError(f"{where(cfg)}: options.params must be a mapping of arguments")
    try:
        return attr(**(params or {}))
    except Exception as exc:
        raise ModelLoadError(
            f"{where(cfg)}: building {attr.__qualname__}(**params) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
