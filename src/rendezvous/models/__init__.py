"""Model adapters: every kind of model behind the one small :class:`Model` interface.

:func:`load_model` builds the adapter a deployment's model entry asks for. Optional
dependencies (scikit-learn, ONNX Runtime, River) are imported only by the adapter that
needs them; a missing one raises :class:`~rendezvous.errors.MissingDependency`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Deployment, ModelConfig, ModelKind
from ..errors import ModelLoadError
from .base import AsyncModel, Matrix, Model, ModelInfo, Output, check_output
from .http import HttpModel, load_http
from .onnx import OnnxModel, load_onnx
from .python import BatchFunctionModel, RowFunction, RowFunctionModel, load_python
from .river import RiverModel, load_river
from .sklearn import EstimatorModel, load_sklearn

__all__ = [
    "AsyncModel",
    "BatchFunctionModel",
    "EstimatorModel",
    "HttpModel",
    "Matrix",
    "Model",
    "ModelInfo",
    "OnnxModel",
    "Output",
    "RiverModel",
    "RowFunction",
    "RowFunctionModel",
    "check_output",
    "load_model",
]

Loader = Callable[[ModelConfig, Deployment], Model | AsyncModel]

LOADERS: dict[ModelKind, Loader] = {
    ModelKind.PYTHON: load_python,
    ModelKind.SKLEARN: load_sklearn,
    ModelKind.ONNX: load_onnx,
    ModelKind.RIVER: load_river,
    ModelKind.HTTP: load_http,
}


def load_model(cfg: ModelConfig, deployment: Deployment) -> Model | AsyncModel:
    """Load the model ``cfg`` describes; paths and imports resolve against the deployment.

    Raises :class:`~rendezvous.errors.ModelLoadError` naming the model and the problem.
    """
    loader = LOADERS.get(cfg.kind)
    if loader is None:
        raise ModelLoadError(
            f"model '{cfg.name}' has kind '{cfg.kind}': a {cfg.kind} computes nothing and "
            "cannot be loaded as a model"
        )
    return loader(cfg, deployment)
