"""Paired tests for promotion: is the challenger better than the champion on these requests?

Both models answered the same labelled requests, so their errors are compared request by
request. Pairing removes the difficulty the two share (a hard request is hard for both),
which is what lets a small true difference show with a few hundred labels.

* **accuracy** — McNemar's test on the discordant pairs: ``b`` requests only the challenger
  got right, ``c`` only the champion. Under "equally good" ``b ~ Binomial(b + c, 1/2)``.
  Exact binomial tail below 25 discordant pairs (the normal approximation is poor there),
  otherwise chi-square with continuity correction.
* **mae** / **rmse** — paired t-test on the per-request difference in absolute (mae) or
  squared (rmse) error. Chosen over Wilcoxon's signed-rank test because it tests the
  *mean* difference, which is exactly what MAE and MSE compare: Wilcoxon tests a median-like
  shift and can back a challenger that is usually a little better but sometimes far worse,
  i.e. worse in MAE. Skewed errors are the t-test's weak point, but ``min_pairs`` in the
  hundreds puts the mean well inside the central limit theorem's reach (the tests check its
  false-promotion rate on skewed errors).

Every p-value is one-sided, for "the challenger is better"; promotion needs
``p < alpha`` and at least ``min_pairs`` pairs. Deciding once per window keeps ``alpha``
the false-promotion rate; re-testing a growing window after every label and promoting at
the first success would not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..errors import InputError, MissingDependency
from .task import is_number

__all__ = ["METRICS", "Decision", "Metric", "Pair", "PromotionPolicy", "evaluate", "mcnemar"]

Metric = Literal["accuracy", "mae", "rmse"]
METRICS: tuple[Metric, ...] = ("accuracy", "mae", "rmse")

# Below this many discordant pairs McNemar uses the exact binomial tail.
EXACT_BELOW = 25


@dataclass(frozen=True, slots=True)
class Pair:
    """One labelled request both models answered."""

    label: Any
    champion: Any  # the champion's prediction
    challenger: Any


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """Promote when the challenger is better on ``metric`` at level ``alpha``, with at
    least ``min_pairs`` labelled requests answered by both."""

    metric: Metric = "accuracy"
    min_pairs: int = 200
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"expected one of {list(METRICS)}, got {self.metric!r}", "metric")
        if isinstance(self.min_pairs, bool) or not isinstance(self.min_pairs, int):
            raise InputError(f"expected an integer, got {self.min_pairs!r}", "min_pairs")
        if self.min_pairs < 1:
            raise InputError(f"expected at least 1, got {self.min_pairs}", "min_pairs")
        if not 0 < self.alpha < 1:
            raise InputError(f"expected a level between 0 and 1, got {self.alpha!r}", "alpha")


@dataclass(frozen=True, slots=True)
class Decision:
    promote: bool
    n: int  # pairs the test used
    champion_metric: float | None
    challenger_metric: float | None
    statistic: float | None
    p_value: float | None  # one-sided: challenger better
    reason: str
    test: str | None = None  # mcnemar-exact | mcnemar-chi2 | paired-t


def mcnemar(b: int, c: int) -> tuple[str, float, float]:
    """One-sided McNemar test of ``b`` (only the challenger right) against ``c``.

    Returns the test used, its statistic (``b`` for the exact test, the corrected
    chi-square otherwise) and the p-value for "the challenger is right more often".
    """
    n = b + c
    if n < EXACT_BELOW:
        tail = sum(math.comb(n, k) for k in range(b, n + 1))
        return "mcnemar-exact", float(b), tail / 2**n
    chi2 = max(abs(b - c) - 1, 0) ** 2 / n
    z = (b - c - 1) / math.sqrt(n)  # continuity-corrected, signed: the one-sided version
    return "mcnemar-chi2", chi2, 0.5 * math.erfc(z / math.sqrt(2))


def paired_t(differences: Sequence[float]) -> tuple[float | None, float]:
    """One-sided paired t-test that the mean of ``differences`` is above 0."""
    n = len(differences)
    if n < 2:
        return None, 1.0
    mean = math.fsum(differences) / n
    var = math.fsum((d - mean) ** 2 for d in differences) / (n - 1)
    if var == 0.0:
        # Every pair differs by the same amount: certain, but t is not a number.
        return None, 0.0 if mean > 0 else 1.0
    t = mean / math.sqrt(var / n)
    return t, float(_t_sf(t, n - 1))


def _t_sf(t: float, df: int) -> float:
    try:
        from scipy import stats
    except ImportError as exc:
        raise MissingDependency("scipy", "sklearn", "the paired t-test for promotion") from exc
    return float(stats.t.sf(t, df))


def evaluate(policy: PromotionPolicy, pairs: Sequence[Pair]) -> Decision:
    """Test the challenger against the champion on ``pairs`` and decide on promotion."""
    if policy.metric == "accuracy":
        decision = _accuracy(pairs)
    else:
        decision = _regression(policy.metric, pairs)
    if decision.n < policy.min_pairs:
        reason = f"{decision.n} pair(s); the policy needs at least {policy.min_pairs}"
        return replace(decision, promote=False, reason=reason)
    assert decision.p_value is not None
    if decision.p_value < policy.alpha:
        reason = (
            f"challenger better on {policy.metric} "
            f"(p = {decision.p_value:.3g} < {policy.alpha} over {decision.n} pairs)"
        )
        return replace(decision, promote=True, reason=reason)
    reason = (
        f"no evidence the challenger is better on {policy.metric} "
        f"(p = {decision.p_value:.3g} >= {policy.alpha} over {decision.n} pairs)"
    )
    return replace(decision, promote=False, reason=reason)


def _accuracy(pairs: Sequence[Pair]) -> Decision:
    n = len(pairs)
    if n == 0:
        return Decision(False, 0, None, None, None, None, "", None)
    champion_right = [p.champion == p.label for p in pairs]
    challenger_right = [p.challenger == p.label for p in pairs]
    b = sum(1 for ch, cl in zip(champion_right, challenger_right, strict=True) if cl and not ch)
    c = sum(1 for ch, cl in zip(champion_right, challenger_right, strict=True) if ch and not cl)
    test, statistic, p_value = mcnemar(b, c)
    return Decision(
        False, n, sum(champion_right) / n, sum(challenger_right) / n, statistic, p_value, "", test
    )


def _regression(metric: Metric, pairs: Sequence[Pair]) -> Decision:
    usable = [
        (float(p.label), float(p.champion), float(p.challenger))
        for p in pairs
        if is_number(p.label) and is_number(p.champion) and is_number(p.challenger)
    ]
    n = len(usable)
    if n == 0:
        return Decision(False, 0, None, None, None, None, "", None)
    power = 1 if metric == "mae" else 2
    ours = [abs(c - y) ** power for y, c, _ in usable]
    theirs = [abs(m - y) ** power for y, _, m in usable]
    t, p_value = paired_t([a - b for a, b in zip(ours, theirs, strict=True)])

    def summary(losses: list[float]) -> float:
        mean = math.fsum(losses) / n
        return mean if power == 1 else math.sqrt(mean)

    return Decision(False, n, summary(ours), summary(theirs), t, p_value, "", "paired-t")
