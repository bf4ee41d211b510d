"""Promotion tests: right p-values, power when a challenger is better, alpha when it is not."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rendezvous.compare import Pair, PromotionPolicy, evaluate, mcnemar
from rendezvous.compare.stats import paired_t
from rendezvous.errors import InputError

SEEDS = range(300)


def _binomial_tolerance(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n)


# -- the tests themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 1), (10, 2), (5, 12), (12, 12)])
def test_exact_mcnemar_is_the_binomial_tail(b: int, c: int) -> None:
    test, statistic, p = mcnemar(b, c)
    assert test == "mcnemar-exact" and statistic == b
    if b + c:
        expected = scipy_stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue
        assert p == pytest.approx(expected)
    else:
        assert p == 1.0


@pytest.mark.parametrize(("b", "c"), [(40, 20), (15, 10), (100, 130), (30, 30)])
def test_large_mcnemar_is_the_corrected_chi_square(b: int, c: int) -> None:
    test, statistic, p = mcnemar(b, c)
    assert test == "mcnemar-chi2"
    assert statistic == pytest.approx(max(abs(b - c) - 1, 0) ** 2 / (b + c))
    if b > c:
        assert p == pytest.approx(scipy_stats.chi2.sf(statistic, 1) / 2)
    else:
        assert p > 0.5


def test_paired_t_is_scipys_one_sided_test() -> None:
    rng = np.random.default_rng(1)
    ours, theirs = rng.exponential(1.0, 50), rng.exponential(0.8, 50)
    t, p = paired_t((ours - theirs).tolist())
    expected = scipy_stats.ttest_rel(ours, theirs, alternative="greater")
    assert t == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert paired_t([0.5] * 10) == (None, 0.0)
    assert paired_t([0.0] * 10) == (None, 1.0)
    assert paired_t([1.0]) == (None, 1.0)


def test_too_few_pairs_never_promote() -> None:
    pairs = [Pair(1, 0, 1)] * 30  # the challenger is right every time
    decision = evaluate(PromotionPolicy("accuracy", min_pairs=50), pairs)
    assert not decision.promote and decision.n == 30
    assert decision.p_value is not None and decision.p_value < 1e-6
    assert "needs at least 50" in decision.reason
    assert evaluate(PromotionPolicy("accuracy", min_pairs=20), pairs).promote
    empty = evaluate(PromotionPolicy("mae"), [])
    assert not empty.promote and empty.n == 0 and empty.p_value is None


def test_regression_pairs_skip_what_is_not_a_number() -> None:
    pairs = [Pair(1.0, 2.0, 1.5), Pair(1.0, None, 1.0), Pair("x", 1.0, 1.0), Pair(0.0, 3.0, 1.0)]
    decision = evaluate(PromotionPolicy("rmse", min_pairs=1), pairs)
    assert decision.n == 2
    assert decision.champion_metric == pytest.approx(math.sqrt((1 + 9) / 2))
    assert decision.challenger_metric == pytest.approx(math.sqrt((0.25 + 1) / 2))


@pytest.mark.parametrize(
    ("kwargs", "loc"),
    [({"metric": "auc"}, "metric"), ({"min_pairs": 0}, "min_pairs"), ({"alpha": 1.0}, "alpha")],
)
def test_a_bad_policy_names_the_field(kwargs: dict[str, object], loc: str) -> None:
    with pytest.raises(InputError) as caught:
        PromotionPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.loc == loc


# -- simulated classifiers -----------------------------------------------------------------


def _classification(
    accuracies: tuple[float, float], n: int, seed: int, rho: float = 0.5
) -> list[Pair]:
    """Labels and the two models' answers, each right with its accuracy; a difficulty
    shared by both (weight ``rho``) correlates their mistakes as real models' are."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(n)
    labels = rng.integers(0, 2, n)
    answers = []
    for accuracy in accuracies:
        own = rng.standard_normal(n)
        latent = math.sqrt(rho) * shared + math.sqrt(1 - rho) * own
        right = latent < NormalDist().inv_cdf(accuracy)  # P(right) = accuracy exactly
        answers.append(np.where(right, labels, 1 - labels))
    return [Pair(int(y), int(c), int(m)) for y, c, m in zip(labels, *answers, strict=True)]


def test_a_better_classifier_is_promoted_and_a_worse_never_is() -> None:
    policy = PromotionPolicy("accuracy", min_pairs=200, alpha=0.05)
    for seed in range(20):
        better = _classification((0.80, 0.86), 3000, seed)
        worse = _classification((0.80, 0.74), 3000, seed)
        assert not evaluate(policy, better[:150]).promote  # not enough evidence yet
        decision = evaluate(policy, better)
        assert decision.promote, decision.reason
        assert decision.challenger_metric > decision.champion_metric  # type: ignore[operator]
        for n in (200, 500, 1000, 2000, 3000):
            assert not evaluate(policy, worse[:n]).promote


def test_equal_classifiers_are_falsely_promoted_at_most_alpha_of_the_time() -> None:
    alpha = 0.05
    policy = PromotionPolicy("accuracy", min_pairs=200, alpha=alpha)
    promoted = sum(
        evaluate(policy, _classification((0.80, 0.80), 400, seed)).promote for seed in SEEDS
    )
    rate = promoted / len(SEEDS)
    # McNemar with continuity correction is conservative: the rate sits at or below alpha.
    assert rate <= alpha + _binomial_tolerance(alpha, len(SEEDS))
    assert promoted > 0  # but the test does promote by chance, as a level-alpha test must


# -- simulated regressors ------------------------------------------------------------------


def _regression(scales: tuple[float, float], n: int, seed: int, rho: float = 0.5) -> list[Pair]:
    """Predictions off by skewed, heavy-tailed errors (a per-request difficulty shared by both
    models times normal noise), the models' error sizes in proportion to ``scales``."""
    rng = np.random.default_rng(seed)
    labels = rng.normal(50, 10, n)
    difficulty = rng.lognormal(0.0, 0.5, n)
    shared = rng.standard_normal(n)
    predictions = []
    for scale in scales:
        noise = math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.standard_normal(n)
        predictions.append(labels + scale * difficulty * noise)
    return [
        Pair(float(y), float(c), float(m)) for y, c, m in zip(labels, *predictions, strict=True)
    ]


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_a_better_regressor_is_promoted_and_a_worse_never_is(metric: str) -> None:
    policy = PromotionPolicy(metric, min_pairs=200, alpha=0.05)  # type: ignore[arg-type]
    for seed in range(20):
        better = evaluate(policy, _regression((1.0, 0.85), 2000, seed))
        assert better.promote, better.reason
        assert better.test == "paired-t"
        assert better.challenger_metric < better.champion_metric  # type: ignore[operator]
        worse = _regression((1.0, 1.15), 2000, seed)
        for n in (200, 500, 1000, 2000):
            assert not evaluate(policy, worse[:n]).promote


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_equal_regressors_are_falsely_promoted_about_alpha_of_the_time(metric: str) -> None:
    alpha = 0.05
    policy = PromotionPolicy(metric, min_pairs=200, alpha=alpha)  # type: ignore[arg-type]
    promoted = sum(evaluate(policy, _regression((1.0, 1.0), 300, seed)).promote for seed in SEEDS)
    rate = promoted / len(SEEDS)
    assert abs(rate - alpha) <= _binomial_tolerance(alpha, len(SEEDS))
