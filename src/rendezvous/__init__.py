"""rendezvous-ml: real-time model serving on the Rendezvous architecture."""

from __future__ import annotations

from .collector import Answer
from .config import Deployment, load_deployment, parse_deployment
from .errors import (
    ConfigError,
    InputError,
    ModelError,
    NotFound,
    Overloaded,
    RendezvousError,
)
from .learning import Engine, LearningConfig, ModelParameters, PredictionResult
from .messages import Request, Score
from .models.base import AsyncModel, Model, ModelInfo, Output
from .service import Rendezvous

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AsyncModel",
    "ConfigError",
    "Deployment",
    "Engine",
    "InputError",
    "LearningConfig",
    "Model",
    "ModelError",
    "ModelInfo",
    "ModelParameters",
    "NotFound",
    "Output",
    "Overloaded",
    "PredictionResult",
    "Rendezvous",
    "RendezvousError",
    "Request",
    "Score",
    "__version__",
    "load_deployment",
    "parse_deployment",
]
