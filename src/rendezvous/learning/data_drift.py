"""Data drift: do recent inputs still look like the ones the serving version learnt from?

A two-window test per feature, chosen over a streaming detector because the question is
about a *reference* (the serving version's training inputs), not about change within the
live stream: a stream that differs from the training data from its first example on would
never alarm a detector that only compares the stream with itself.

Every ``batch`` examples, a two-sample Kolmogorov-Smirnov test compares each feature's
values in that batch with its values in the reference (at most ``reference_size`` rows,
sampled evenly). A feature drifts when ``p < alpha / n_features`` (Bonferroni: ``alpha`` is
the chance of a false alarm per batch over all features together). An alarm is raised when
a feature starts drifting, not again while it stays drifted, so a persistent shift is one
event, not one per batch; a new reference (a new version) starts afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import MissingDependency
from .rows import Row

__all__ = ["FeatureAlarm", "FeatureDrift"]

# Fewer reference rows than this say too little about a distribution to test against.
MIN_REFERENCE = 20


@dataclass(frozen=True, slots=True)
class FeatureAlarm:
    """``feature`` started drifting: the KS ``statistic`` (0 same … 1 disjoint) and its
    ``p_value``, over ``n`` recent values."""

    feature: str
    statistic: float
    p_value: float
    n: int


class FeatureDrift:
    def __init__(
        self,
        features: Sequence[str],
        *,
        batch: int = 200,
        alpha: float = 0.01,
        reference_size: int = 1000,
    ) -> None:
        self.features = tuple(features)
        self.batch = batch
        self.alpha = alpha
        self.reference_size = reference_size
        self._reference: npt.NDArray[np.float64] | None = None
        self._recent: list[Row] = []
        self.drifting: set[str] = set()

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    def set_reference(self, rows: Sequence[Row]) -> None:
        """Compare with ``rows`` from now on (too few rows: no comparison until the next)."""
        self._recent.clear()
        self.drifting.clear()
        if len(rows) < MIN_REFERENCE:
            self._reference = None
            return
        step = max(1, len(rows) // self.reference_size)
        self._reference = np.asarray(rows[::step][: self.reference_size], dtype=np.float64)

    def update(self, row: Row) -> list[FeatureAlarm]:
        """Add one input; the alarms of features that started drifting with it, if any."""
        if self._reference is None:
            return []
        self._recent.append(row)
        if len(self._recent) < self.batch:
            return []
        recent = np.asarray(self._recent, dtype=np.float64)
        self._recent.clear()
        return self._test(self._reference, recent)

    def _test(
        self, reference: npt.NDArray[np.float64], recent: npt.NDArray[np.float64]
    ) -> list[FeatureAlarm]:
        try:
            from scipy.stats import ks_2samp
        except ImportError as exc:  # scikit-learn and River both bring scipy
            raise MissingDependency("scipy", "sklearn", "data drift detection") from exc
        bound = self.alpha / len(self.features)
        alarms: list[FeatureAlarm] = []
        for j, name in enumerate(self.features):
            result = ks_2samp(reference[:, j], recent[:, j])
            statistic, p_value = float(result.statistic), float(result.pvalue)
            if p_value < bound:
                if name not in self.drifting:
                    self.drifting.add(name)
                    alarms.append(FeatureAlarm(name, statistic, p_value, len(recent)))
            else:
                self.drifting.discard(name)
        return alarms
