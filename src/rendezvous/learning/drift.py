"""Drift detectors by name, behind River's own verbs: ``update(x)`` and ``drift_detected``.

The learner feeds a detector the serving version's error on each labelled example, predicted
before it is learnt (prequential evaluation): absolute errors for regressors, 0/1 mistakes
for classifiers. Only rising errors are drift: falling errors are what publishing a better
version does. Page-Hinkley watches upwards and the binary detectors (DDM, HDDM_A) are
one-sided by construction; ADWIN is two-sided, so an ADWIN cut that lowers its mean is not
reported (ADWIN still drops the older part of its window and goes on from the new level).
The detector is never reset on publishing: a drift right after a new version would then
look like the normal level and go unnoticed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import MissingDependency
from .config import DetectorName
from .rows import Task

__all__ = ["BINARY_DETECTORS", "DriftEvent", "DriftWatch", "make_detector"]

BINARY_DETECTORS = frozenset({"ddm", "hddm_a"})


@dataclass(frozen=True)
class DriftEvent:
    """A drift alarm: when, after how many labelled examples (``n_examples``), by which
    ``detector``, and which version was serving (``version``, ``None`` before the first)."""

    time: float
    n_examples: int
    detector: str
    version: int | None


def make_detector(name: DetectorName, threshold: float | None = None) -> Any:
    """A fresh River detector; ``threshold`` is its sensitivity knob (see ``LearningConfig``)."""
    try:
        drift: Any = importlib.import_module("river.drift")
    except ImportError as exc:
        raise MissingDependency("river", "river", "drift detection") from exc
    if name == "adwin":
        return drift.ADWIN() if threshold is None else drift.ADWIN(delta=threshold)
    if name == "page_hinkley":
        if threshold is None:
            return drift.PageHinkley(mode="up")
        return drift.PageHinkley(mode="up", threshold=threshold)
    if name == "ddm":
        if threshold is None:
            return drift.binary.DDM()
        return drift.binary.DDM(drift_threshold=threshold)
    if name == "hddm_a":
        if threshold is None:
            return drift.binary.HDDMA()
        # River wants the warning level looser than the drift level; keep its 5:1 ratio.
        return drift.binary.HDDMA(
            drift_confidence=threshold, warning_confidence=min(5 * threshold, 0.5)
        )
    raise ValueError(f"unknown detector {name!r}")


class DriftWatch:
    """One detector over one model's error stream."""

    def __init__(self, name: DetectorName, threshold: float | None, task: Task) -> None:
        if name in BINARY_DETECTORS and task != "classification":
            raise ValueError(f"detector {name!r} watches right/wrong answers: classifiers only")
        self.name = name
        self._threshold = threshold
        self._binary = name in BINARY_DETECTORS
        self._two_sided = name == "adwin"
        self._detector = make_detector(name, threshold)
        self._drift = False

    def update(self, x: float) -> None:
        """Feed one error: absolute error, or 1.0 for a mistake and 0.0 for a right answer."""
        detector = self._detector
        if self._two_sided:
            before = detector.estimation
            detector.update(x)
            self._drift = bool(detector.drift_detected) and detector.estimation > before
        else:
            detector.update(x >= 0.5 if self._binary else x)
            self._drift = bool(detector.drift_detected)

    @property
    def drift_detected(self) -> bool:
        return self._drift

    def reset(self) -> None:
        """Start afresh, forgetting every error seen."""
        self._detector = make_detector(self.name, self._threshold)
        self._drift = False
