"""River online models: a pickled fitted estimator, or a fresh one built by import string.

Rows go through ``predict_one`` one by one, as River intends. The estimator stays reachable
as ``.estimator`` so continuous learning can feed it ``learn_one``. An online classifier
meets new classes as it learns, so unless ``options.classes`` fixes them the model's classes
are every label it has answered with so far, sorted.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..config import Deployment, ModelConfig
from ..errors import ModelError, ModelLoadError
from ..messages import Prediction
from ._loading import (
    check_options,
    file_version,
    import_attr,
    make_info,
    option_classes,
    require,
    scalars,
    source_file,
    text_version,
    where,
)
from .base import Matrix, Model, ModelInfo, Output

__all__ = ["RiverModel", "load_river"]

OPTIONS = {"params", "classes"}
PICKLE_SUFFIXES = (".pkl", ".pickle")


class RiverModel(Model):
    def __init__(self, info: ModelInfo, estimator: Any, fixed_classes: bool = False) -> None:
        super().__init__(info)
        self.estimator = estimator
        self._fixed = fixed_classes
        proba = getattr(estimator, "predict_proba_one", None)
        self._proba = proba if callable(proba) and _is_classifier(estimator) else None

    def predict(self, rows: Matrix) -> Output:
        names = self.info.features
        predictions: list[Prediction] = []
        dists: list[Mapping[Any, float]] = []
        try:
            for row in rows.tolist():
                x = dict(zip(names, row, strict=True))
                predictions.append(self.estimator.predict_one(x))
                if self._proba is not None:
                    dists.append(self._proba(x))
        except Exception as exc:
            raise ModelError(f"model '{self.name}': {type(exc).__name__}: {exc}") from exc
        # An untrained classifier knows no class yet and answers {}: no probabilities then.
        if not dists or not all(dists):
            return Output(scalars(predictions), None)
        classes = self._classes(dists)
        probabilities = [[float(d.get(c, 0.0)) for c in classes] for d in dists]
        return Output(scalars(predictions), probabilities)

    def _classes(self, dists: Iterable[Mapping[Any, float]]) -> tuple[Any, ...]:
        known = self.info.classes or ()
        if self._fixed:
            return known
        seen = set(known)
        for d in dists:
            seen.update(d)
        if len(seen) != len(known):
            # Replaced whole, never mutated: a reader on another thread sees old or new.
            self.info = dataclasses.replace(self.info, classes=_sorted(seen))
        return self.info.classes or ()


def _sorted(labels: Iterable[Any]) -> tuple[Any, ...]:
    items = [v.item() if hasattr(v, "item") else v for v in labels]
    try:
        return tuple(sorted(items))
    except TypeError:  # mixed label types have no natural order
        return tuple(sorted(items, key=repr))


def _is_classifier(estimator: Any) -> bool:
    final = estimator
    while hasattr(final, "steps") and isinstance(final.steps, Mapping) and final.steps:
        final = list(final.steps.values())[-1]  # the last step of a pipeline predicts
    return callable(getattr(final, "predict_proba_one", None))


def _estimator(cfg: ModelConfig, deployment: Deployment) -> tuple[Any, str]:
    source = cfg.source or ""
    if source.lower().endswith(PICKLE_SUFFIXES):
        if "params" in cfg.options:
            raise ModelLoadError(f"{where(cfg)}: options.params is only for an import string")
        path = source_file(cfg, deployment)
        try:
            with path.open("rb") as f:
                estimator = pickle.load(f)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "river":
                require("river", "river", "river", "River models")
            raise ModelLoadError(f"{where(cfg)}: {path} needs module '{exc.name}'") from exc
        except Exception as exc:
            raise ModelLoadError(
                f"{where(cfg)}: cannot unpickle {path} ({type(exc).__name__}: {exc})"
            ) from exc
        return estimator, file_version(path)
    require("river", "river", "river", "River models")
    _, factory = import_attr(cfg, deployment)
    params = cfg.options.get("params", {})
    if not isinstance(params, Mapping):
        raise ModelLoadError(f"{where(cfg)}: options.params must be a mapping of arguments")
    try:
        estimator = factory(**params)
    except Exception as exc:
        raise ModelLoadError(
            f"{where(cfg)}: building {source}(**params) failed: {type(exc).__name__}: {exc}"
        ) from exc
    return estimator, text_version(source, json.dumps(params, sort_keys=True, default=str))


def load_river(cfg: ModelConfig, deployment: Deployment) -> RiverModel:
    check_options(cfg, OPTIONS)
    estimator, version = _estimator(cfg, deployment)
    if not callable(getattr(estimator, "predict_one", None)):
        raise ModelLoadError(
            f"{where(cfg)}: a {type(estimator).__name__} has no predict_one method"
        )
    classes = option_classes(cfg)
    model = RiverModel(make_info(cfg, deployment, version, classes), estimator, classes is not None)
    # One zero row at load: proves the model runs, and a trained classifier names its
    # classes on any row, so they are known before the first request rather than during it.
    try:
        model.predict(np.zeros((1, deployment.input_schema.width)))
    except ModelError as exc:
        raise ModelLoadError(f"{where(cfg)}: a trial prediction failed: {exc}") from exc
    return model
