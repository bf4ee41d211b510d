"""scikit-learn models from a joblib (or skops) file, and any object with ``predict(X)``.

The whole batch goes through one ``predict`` call: a per-row loop would cost more than the
model itself for linear models and small trees. Linear models whose arithmetic
:mod:`.linear` reproduces exactly skip scikit-learn's per-call overhead altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Deployment, ModelConfig
from ..errors import MissingDependency, ModelError, ModelLoadError
from ._loading import check_options, file_version, make_info, require, source_file, where
from .base import Matrix, Model, ModelInfo, Output
from .linear import LinearKernel, linear_kernel

__all__ = ["EstimatorModel", "check_features", "estimator_classes", "load_sklearn"]

OPTIONS = {"probabilities", "trusted"}


class EstimatorModel(Model):
    """Wraps an estimator: ``predict(X)``, and ``predict_proba(X)`` when it has one."""

    def __init__(self, info: ModelInfo, estimator: Any, probabilities: bool = True) -> None:
        super().__init__(info)
        self.estimator = estimator
        proba = getattr(estimator, "predict_proba", None) if probabilities else None
        self._predict_proba = proba if callable(proba) else None
        self._fast = _fast_context()
        width = getattr(estimator, "n_features_in_", None) or len(info.features)
        self._kernel = linear_kernel(estimator, int(width), self._predict_proba is not None)

    @property
    def kernel(self) -> LinearKernel | None:
        """The estimator's arithmetic without scikit-learn's overhead, where it is exact."""
        return self._kernel

    def predict(self, rows: Matrix) -> Output:
        try:
            if self._kernel is not None:
                labels, proba = self._kernel(rows, self._predict_proba is not None)
            else:
                with self._fast():
                    labels = np.asarray(self.estimator.predict(rows))
                    proba = None if self._predict_proba is None else self._predict_proba(rows)
        except Exception as exc:
            raise ModelError(f"model '{self.name}': {type(exc).__name__}: {exc}") from exc
        if labels.ndim == 2 and labels.shape[1] == 1:  # a column vector from some regressors
            labels = labels.ravel()
        probabilities = None if proba is None else np.asarray(proba, dtype=np.float64).tolist()
        return Output(labels.tolist(), probabilities)


def _fast_context() -> Callable[[], AbstractContextManager[Any]]:
    """scikit-learn's own switches for what serving has already guaranteed.

    Rows reach a model only after the API checked every value is a finite number, and the
    estimator's parameters were validated when it was fitted: re-checking both costs ~40%
    of a one-row ``predict``. Thread-local, so nothing outside the call is affected.
    """
    try:
        import sklearn
    except ImportError:  # an sklearn-like object from a python model, without sklearn
        return nullcontext
    return partial(sklearn.config_context, assume_finite=True, skip_parameter_validation=True)


def estimator_classes(estimator: Any) -> tuple[Any, ...] | None:
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else tuple(np.asarray(classes).tolist())


def check_features(cfg: ModelConfig, deployment: Deployment, estimator: Any) -> None:
    """Catch a model trained on other columns at load time, not as silent nonsense later."""
    schema = deployment.input_schema
    n_in = getattr(estimator, "n_features_in_", None)
    if isinstance(n_in, int) and n_in != schema.width:
        raise ModelLoadError(
            f"{where(cfg)}: the model takes {n_in} features, the deployment's schema has "
            f"{schema.width}"
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and schema.features is not None:
        trained: Sequence[str] = [str(n) for n in names]
        if list(trained) != schema.features:
            raise ModelLoadError(
                f"{where(cfg)}: the model was trained on features {list(trained)}, the "
                f"deployment's schema lists {schema.features} (same names in the same order needed)"
            )


def _load_file(cfg: ModelConfig, path: Path) -> Any:
    if path.suffix.lower() == ".skops":
        sio = require("skops.io", "skops", "sklearn", "loading .skops model files")
        trusted = cfg.options.get("trusted")
        try:
            return sio.load(path, trusted=trusted)
        except Exception as exc:
            untrusted = _untrusted(sio, path)
            hint = f"; list the types in options.trusted if you trust them: {untrusted}"
            raise ModelLoadError(
                f"{where(cfg)}: cannot load {path}: {exc}{hint if untrusted else ''}"
            ) from exc
    joblib = require("joblib", "joblib", "sklearn", "loading scikit-learn models")
    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "sklearn":
            raise MissingDependency(
                "scikit-learn", "sklearn", "loading scikit-learn models"
            ) from exc
        raise ModelLoadError(
            f"{where(cfg)}: {path} needs the module '{exc.name}', which is not installed"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(
            f"{where(cfg)}: cannot load {path} with joblib ({type(exc).__name__}: {exc})"
        ) from exc


def _untrusted(sio: Any, path: Path) -> list[str]:
    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception:
        return []


def load_sklearn(cfg: ModelConfig, deployment: Deployment) -> EstimatorModel:
    options = check_options(cfg, OPTIONS)
    path = source_file(cfg, deployment)
    estimator = _load_file(cfg, path)
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(
            f"{where(cfg)}: {path} holds a {type(estimator).__name__}, which has no predict method"
        )
    check_features(cfg, deployment, estimator)
    with_proba = bool(options.get("probabilities", True))
    classes = estimator_classes(estimator)
    info = make_info(cfg, deployment, file_version(path), classes, file=str(path))
    return EstimatorModel(info, estimator, probabilities=with_proba)
