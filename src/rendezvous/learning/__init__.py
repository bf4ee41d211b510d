"""Continuous learning in-process: models retrained in the background as labelled data
arrives, drift detected, new versions validated and swapped in without pausing predictions.

The public API is :class:`Engine` with :class:`LearningConfig` and :class:`ModelParameters`;
the other names are what its methods return.
"""

from __future__ import annotations

from .config import LearningConfig, ModelParameters
from .drift import DriftEvent, DriftWatch
from .engine import Engine
from .snapshot import ModelSnapshot, PredictionResult
from .status import ModelStatus
from .validation import ValidationDecision

__all__ = [
    "DriftEvent",
    "DriftWatch",
    "Engine",
    "LearningConfig",
    "ModelParameters",
    "ModelSnapshot",
    "ModelStatus",
    "PredictionResult",
    "ValidationDecision",
]
