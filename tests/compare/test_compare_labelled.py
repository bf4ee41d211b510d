"""Quality against labels equals what plain Python computes from the raw archive."""

from __future__ import annotations

import math
from typing import Any

import pytest
from compare_data import (
    T0,
    Traffic,
    binary_traffic,
    deployment,
    raw_scores,
    raw_window,
)

from rendezvous.archive import MemoryArchive
from rendezvous.compare import Window, compare
from rendezvous.compare import labelled as labelled_module

EPS = 2.220446049250313e-16


def _labelled_pairs(
    archive: MemoryArchive, model: str, since: float, until: float
) -> list[tuple[Any, Any]]:
    """(label, score) for the window's labelled requests the model answered well."""
    requests = raw_window(archive, since, until)
    labels = archive.labels_for([r.id for r in requests])
    scores = raw_scores(archive, model)
    return [
        (labels[r.id], scores[r.id])
        for r in requests
        if r.id in labels and r.id in scores and scores[r.id].error is None
    ]


def _f1(pairs: list[tuple[Any, Any]], cls: Any) -> float:
    tp = sum(1 for y, s in pairs if y == cls and s.prediction == cls)
    fp = sum(1 for y, s in pairs if y != cls and s.prediction == cls)
    fn = sum(1 for y, s in pairs if y == cls and s.prediction != cls)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _auc(pairs: list[tuple[Any, Any]]) -> float:
    pos = [s.probabilities[1] for y, s in pairs if y == 1]
    neg = [s.probabilities[1] for y, s in pairs if y == 0]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


@pytest.fixture(params=["sklearn", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(labelled_module, "_sklearn_metrics", lambda: None)
    return str(request.param)


def test_binary_metrics_match_an_independent_computation(
    archive: MemoryArchive, traffic: Traffic, backend: str
) -> None:
    binary_traffic(traffic)
    since, until = T0 + 30, T0 + 270
    result = compare(archive, deployment(), Window(since=since, until=until))
    assert result.task == "classification"
    assert result.classes == (0, 1) and result.positive == 1
    assert result.labelled == len(
        archive.labels_for([r.id for r in raw_window(archive, since, until)])
    )

    for model in ("champ", "better", "worse"):
        pairs = _labelled_pairs(archive, model, since, until)
        q = result.model(model).quality
        assert q is not None
        assert q.n == len(pairs) > 50
        assert q.accuracy == pytest.approx(sum(y == s.prediction for y, s in pairs) / len(pairs))
        assert q.f1 == pytest.approx(_f1(pairs, 1))
        if model == "worse":  # no probabilities: no ranking, no likelihood
            assert q.roc_auc is None and q.log_loss is None
        else:
            assert q.roc_auc == pytest.approx(_auc(pairs))
            expected = -sum(math.log(max(s.probabilities[y], EPS)) for y, s in pairs) / len(pairs)
            assert q.log_loss == pytest.approx(expected)
        assert q.mae is None and q.rmse is None


def test_multiclass_f1_is_macro_over_the_classes_seen(
    archive: MemoryArchive, traffic: Traffic, backend: str
) -> None:
    import random

    rng = random.Random(3)
    classes = ["cat", "dog", "emu"]
    for i in range(200):
        truth = rng.choice(classes)
        traffic.request(f"r{i}", T0 + i)
        for model, skill in (("champ", 0.7), ("better", 0.5)):
            guess = truth if rng.random() < skill else rng.choice([*classes, "yak"])
            probs = [0.1, 0.1, 0.1]
            if guess in classes:
                probs[classes.index(guess)] = 0.8
            traffic.score(f"r{i}", model, T0 + i, prediction=guess, probabilities=probs)
        traffic.label(f"r{i}", truth, T0 + i)
    traffic.flush()
    dep = deployment(
        {"name": "champ", "kind": "python", "source": "m:f", "role": "champion"},
        {"name": "better", "kind": "python", "source": "m:g"},
    )
    result = compare(archive, dep, Window(last=150), classes={"champ": classes})
    assert result.positive is None and result.classes == tuple(classes)
    for model in ("champ", "better"):
        pairs = _labelled_pairs(archive, model, T0 + 50, T0 + 200)
        seen = {y for y, _ in pairs} | {s.prediction for _, s in pairs}
        q = result.model(model).quality
        assert q is not None and q.roc_auc is None
        assert q.f1 == pytest.approx(sum(_f1(pairs, c) for c in seen) / len(seen))
        assert q.accuracy == pytest.approx(sum(y == s.prediction for y, s in pairs) / len(pairs))
        # "better" was given no classes: its columns are taken to be the champion's
        expected = [-math.log(max(s.probabilities[classes.index(y)], EPS)) for y, s in pairs]
        assert q.log_loss == pytest.approx(sum(expected) / len(expected))


def test_regression_metrics(archive: MemoryArchive, traffic: Traffic) -> None:
    import random

    rng = random.Random(5)
    for i in range(120):
        y = rng.uniform(0, 100)
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=y + rng.gauss(0, 3))
        traffic.score(f"r{i}", "better", T0 + i, prediction=y + rng.gauss(0, 2))
        if i % 2:
            traffic.label(f"r{i}", round(y, 2), T0 + i)
    traffic.score("r119", "worse", T0 + 119, prediction="not a number")
    traffic.flush()
    result = compare(archive, deployment(), Window(since=T0))
    assert result.task == "regression"
    for model in ("champ", "better"):
        pairs = _labelled_pairs(archive, model, T0, T0 + 1000)
        errors = [s.prediction - y for y, s in pairs]
        q = result.model(model).quality
        assert q is not None and q.n == 60
        assert q.mae == pytest.approx(sum(abs(e) for e in errors) / len(errors))
        assert q.rmse == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)))
        assert q.accuracy is None
    worse = result.model("worse").quality
    assert worse is not None and worse.n == 0 and worse.mae is None


def test_without_labels_there_is_no_quality(archive: MemoryArchive, traffic: Traffic) -> None:
    traffic.request("r0", T0)
    traffic.score("r0", "champ", T0, prediction=1)
    traffic.flush()
    result = compare(archive, deployment(), Window(last=10))
    assert all(m.quality is None for m in result.models)
    assert result.labelled == 0


def test_the_task_and_positive_class_can_be_given(archive: MemoryArchive, traffic: Traffic) -> None:
    for i, (pred, label) in enumerate([(1, 1), (0, 1), (1, 0), (0, 0), (0, 0)]):
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=pred)
        traffic.label(f"r{i}", label, T0 + i)
    traffic.flush()
    dep = deployment()
    q = compare(archive, dep, Window(last=5), positive=0).model("champ").quality
    assert q is not None and q.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    reg = compare(archive, dep, Window(last=5), task="regression").model("champ").quality
    assert reg is not None and reg.mae == pytest.approx(2 / 5) and reg.accuracy is None
