"""``register_model``'s ``kind``: a built-in name, or an estimator object to learn with.

Built-in kinds (hyper-parameters from :class:`~.config.ModelParameters`):

=================  ===============================================================
``linear``         least squares, refitted on the window (scikit-learn)
``ridge``          least squares with an L2 penalty (``regularization`` > 0)
``logistic``       logistic regression, binary or multiclass (scikit-learn)
``online_linear``  linear regression learnt by SGD one example at a time (River)
``online_logistic`` logistic regression by SGD, one-vs-rest for any labels (River)
=================  ===============================================================

Any scikit-learn estimator object is cloned and refitted on the window; any River estimator
object learns online in a private copy. scikit-learn and River are imported only when used.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependency
from .config import ModelParameters
from .rows import Task
from .trainers import BatchTrainer, OnlineTrainer, Trainer

__all__ = ["BUILT_IN_KINDS", "make_trainer"]

BUILT_IN_KINDS = ("linear", "ridge", "logistic", "online_linear", "online_logistic")


def make_trainer(kind: object, params: ModelParameters | None) -> Trainer:
    if isinstance(kind, str):
        if kind not in BUILT_IN_KINDS:
            raise InputError(
                f"expected one of {', '.join(BUILT_IN_KINDS)}, or a scikit-learn or River "
                f"estimator object, got {kind!r}",
                "kind",
            )
        if params is not None and not isinstance(params, ModelParameters):
            raise InputError(f"expected ModelParameters, got {type(params).__name__}", "params")
        return _built_in(kind, params or ModelParameters.for_kind(kind))
    if params is not None:
        raise InputError(
            "applies to the built-in kinds only; configure the estimator object itself", "params"
        )
    river_base = sys.modules.get("river.base")  # a River object means River is imported
    if river_base is not None and isinstance(kind, river_base.Estimator):
        if isinstance(kind, river_base.Classifier):
            return OnlineTrainer(kind, "classification", f"river:{type(kind).__name__}")
        if isinstance(kind, river_base.Regressor):
            return OnlineTrainer(kind, "regression", f"river:{type(kind).__name__}")
        raise InputError(f"expected a River classifier or regressor, got {_name(kind)}", "kind")
    if all(callable(getattr(kind, m, None)) for m in ("fit", "predict", "get_params")):
        sklearn_base = _sklearn_base("a scikit-learn estimator")
        task: Task = "classification" if sklearn_base.is_classifier(kind) else "regression"
        if task == "regression" and not sklearn_base.is_regressor(kind):
            raise InputError(
                f"expected a scikit-learn classifier or regressor, got {_name(kind)}", "kind"
            )
        return BatchTrainer(kind, task, f"sklearn:{type(kind).__name__}")
    raise InputError(
        f"expected one of {', '.join(BUILT_IN_KINDS)}, or a scikit-learn or River "
        f"estimator object, got {_name(kind)}",
        "kind",
    )


def _built_in(kind: str, p: ModelParameters) -> Trainer:
    if kind == "linear":
        if p.regularization > 0:
            raise InputError(
                "kind 'linear' fits without a penalty; use kind 'ridge' for regularization > 0",
                "params.regularization",
            )
        _sklearn_base(f"kind '{kind}'")
        from sklearn.linear_model import LinearRegression

        return BatchTrainer(LinearRegression(fit_intercept=p.with_bias), "regression", kind)
    if kind == "ridge":
        if p.regularization <= 0:
            raise InputError(
                "kind 'ridge' needs a penalty > 0 (its alpha); use kind 'linear' for none",
                "params.regularization",
            )
        _sklearn_base(f"kind '{kind}'")
        from sklearn.linear_model import Ridge

        ridge = Ridge(alpha=p.regularization, fit_intercept=p.with_bias, max_iter=p.max_iterations)
        return BatchTrainer(ridge, "regression", kind)
    if kind == "logistic":
        _sklearn_base(f"kind '{kind}'")
        from sklearn.linear_model import LogisticRegression

        c = 1.0 / p.regularization if p.regularization > 0 else np.inf
        logistic = LogisticRegression(C=c, max_iter=p.max_iterations, fit_intercept=p.with_bias)
        return BatchTrainer(logistic, "classification", kind)
    try:
        from river import linear_model, multiclass, optim
    except ImportError as exc:
        raise MissingDependency("river", "river", f"kind '{kind}'") from exc
    intercept_lr = p.learning_rate if p.with_bias else 0.0
    if kind == "online_linear":
        online = linear_model.LinearRegression(
            optimizer=optim.SGD(p.learning_rate), l2=p.regularization, intercept_lr=intercept_lr
        )
        return OnlineTrainer(online, "regression", kind)
    binary = linear_model.LogisticRegression(
        optimizer=optim.SGD(p.learning_rate), l2=p.regularization, intercept_lr=intercept_lr
    )
    # One-vs-rest: River's logistic regression is binary, user labels may be anything.
    return OnlineTrainer(multiclass.OneVsRestClassifier(binary), "classification", kind)


def _sklearn_base(purpose: str) -> Any:
    try:
        import sklearn.base
    except ImportError as exc:
        raise MissingDependency("scikit-learn", "sklearn", purpose) from exc
    return sklearn.base


def _name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
