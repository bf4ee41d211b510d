"""One suite, every adapter: an adapter is done when it passes here."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from rendezvous.models import AsyncModel, Model, check_output

from .conftest import Data
from .helpers import FEATURES, close, deploy, load, predict


@dataclass(frozen=True)
class Case:
    id: str
    entry: Callable[[str], dict[str, Any]]  # server URL → model entry
    agreement: float | None  # least share of rows that match the sklearn reference


CASES = [
    Case(
        "python-rules",
        lambda _: {
            "kind": "python",
            "source": "rdv_conf_rules:score",
            "options": {"classes": [0, 1]},
        },
        None,  # a hand-written rule: not expected to match the trained model
    ),
    Case("python-object", lambda _: {"kind": "python", "source": "rdv_conf_estimator:model"}, 0.99),
    Case("sklearn", lambda _: {"kind": "sklearn", "source": "lr.joblib"}, 0.99),
    Case("onnx-zipmap", lambda _: {"kind": "onnx", "source": "lr.onnx"}, 0.99),
    Case("onnx-tensor", lambda _: {"kind": "onnx", "source": "lr_tensor.onnx"}, 0.99),
    Case("river", lambda _: {"kind": "river", "source": "river.pkl"}, 0.97),  # online, 3 passes
    Case(
        "http-mlflow",
        lambda url: {
            "kind": "http",
            "source": f"{url}/invocations",
            "options": {"protocol": "mlflow", "classes": [0, 1]},
        },
        0.99,
    ),
    Case(
        "http-oip",
        lambda url: {
            "kind": "http",
            "source": f"{url}/v2/models/lr/infer",
            "options": {"protocol": "oip", "classes": [0, 1]},
        },
        0.99,
    ),
]
SAME_AS_REFERENCE = [c for c in CASES if c.agreement is not None]


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


def _open(case: Case, artifacts: Path, server: str) -> Model | AsyncModel:
    return load(artifacts, case.entry(server))


@pytest.fixture
async def model(case: Case, artifacts: Path, server: str) -> AsyncIterator[Model | AsyncModel]:
    m = _open(case, artifacts, server)
    yield m
    await close(m)


@pytest.mark.parametrize("n", [1, 64])
async def test_one_prediction_per_row(model: Model | AsyncModel, data: Data, n: int) -> None:
    out = await predict(model, data.X[:n])
    assert len(out.predictions) == n
    if out.probabilities is not None:
        assert len(out.probabilities) == n


async def test_predictions_are_plain_json_scalars(model: Model | AsyncModel, data: Data) -> None:
    out = await predict(model, data.X[:32])
    for p in out.predictions:
        assert type(p) in (int, float, str, bool, type(None)), type(p)
    for row in out.probabilities or []:
        assert all(type(v) is float for v in row)
    json.dumps({"p": out.predictions, "q": out.probabilities})


async def test_version_is_stable(
    model: Model | AsyncModel, case: Case, artifacts: Path, server: str, data: Data
) -> None:
    before = model.version
    assert isinstance(before, str)
    assert before
    await predict(model, data.X[:8])
    assert model.version == before
    again = _open(case, artifacts, server)
    try:
        assert again.version == before  # derived from content, not from load time
    finally:
        await close(again)


async def test_info_matches_the_deployment(
    model: Model | AsyncModel, case: Case, artifacts: Path, server: str
) -> None:
    dep = deploy(artifacts, case.entry(server))
    assert model.info.features == tuple(dep.input_schema.names) == tuple(FEATURES)
    assert model.info.name == dep.models[0].name
    assert model.info.kind == str(dep.models[0].kind)


async def test_probabilities_are_distributions(model: Model | AsyncModel, data: Data) -> None:
    out = await predict(model, data.X[:64])
    assert out.probabilities is not None, "every adapter under test here is a classifier"
    assert model.info.classes is not None
    for row in out.probabilities:
        assert len(row) == len(model.info.classes)
        assert math.isclose(sum(row), 1.0, abs_tol=1e-4)
        assert all(-1e-6 <= v <= 1 + 1e-6 for v in row)


async def test_check_output_accepts_the_output(model: Model | AsyncModel, data: Data) -> None:
    out = await predict(model, data.X[:64])
    checked = check_output(out, 64, model.info)
    assert checked.predictions == out.predictions


async def test_concurrent_batches_from_many_threads(model: Model | AsyncModel, data: Data) -> None:
    """The executor calls predict from its own thread; several at once must not interfere."""
    slices = [data.X[i : i + 16] for i in range(0, 128, 16)]
    alone = [(await predict(model, rows)).predictions for rows in slices]
    together = await asyncio.gather(*(predict(model, rows) for rows in slices))
    assert [o.predictions for o in together] == alone


@pytest.mark.parametrize("case_", SAME_AS_REFERENCE, ids=lambda c: c.id)
async def test_agrees_with_the_sklearn_reference(
    case_: Case, artifacts: Path, server: str, data: Data, reference: Pipeline
) -> None:
    model = _open(case_, artifacts, server)
    try:
        out = await predict(model, data.X)
    finally:
        await close(model)
    expected = reference.predict(data.X).tolist()
    share = float(np.mean([p == e for p, e in zip(out.predictions, expected, strict=True)]))
    assert share >= (case_.agreement or 0.0), f"{case_.id} agrees on {share:.1%} of rows"
