"""Continuous learning in-process: models retrained in the background as labelled data
arrives, drift detected, new versions validated and swapped in without pausing predictions.

The public API is :class:`Engine` with :class:`LearningConfig` and :class:`ModelParameters`;
the other names are what its methods return.

A deployment's models learn through its learner process instead (a ``learning:`` block in
the deployment file): :class:`DeploymentLearner` retrains from the archive's labelled
examples and publishes to the registry, :class:`VersionFollower` serves what it publishes.
"""

from __future__ import annotations

from .config import LearningConfig, ModelParameters
from .drift import DriftEvent, DriftWatch
from .engine import Engine
from .follow import VersionFollower
from .learner import DeploymentLearner, StepReport
from .snapshot import ModelSnapshot, PredictionResult
from .status import ModelStatus
from .validation import ValidationDecision

__all__ = [
    "DeploymentLearner",
    "DriftEvent",
    "DriftWatch",
    "Engine",
    "LearningConfig",
    "ModelParameters",
    "ModelSnapshot",
    "ModelStatus",
    "PredictionResult",
    "StepReport",
    "ValidationDecision",
    "VersionFollower",
]
