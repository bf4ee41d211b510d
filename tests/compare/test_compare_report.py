"""The report as a whole: JSON for the API, tables for a terminal, models chosen by name."""

from __future__ import annotations

import json

import orjson
import pytest
from compare_data import T0, Traffic, binary_traffic, deployment
from rich.console import Console

from rendezvous.archive import MemoryArchive
from rendezvous.compare import PromotionPolicy, Window, compare, render
from rendezvous.errors import InputError


def test_to_dict_is_plain_json(archive: MemoryArchive, traffic: Traffic) -> None:
    binary_traffic(traffic)
    result = compare(archive, deployment(), Window(last=200), policy=PromotionPolicy(min_pairs=10))
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data  # only JSON types, nothing lost on the way
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["window"] == {"last": 200}
    assert data["policy"] == {"metric": "accuracy", "min_pairs": 10, "alpha": 0.05}
    assert [m["model"] for m in data["models"]] == ["champ", "better", "worse", "canary"]
    better = data["models"][1]
    assert set(better) == {"model", "role", "operations", "quality", "agreement", "decision"}
    assert better["decision"]["test"] in ("mcnemar-exact", "mcnemar-chi2")
    assert data["models"][0]["decision"] is None and data["models"][0]["agreement"] is None
    assert set(better["agreement"]["model_quantiles"]) == {"p10", "p50", "p90"}


def test_render_draws_every_table(archive: MemoryArchive, traffic: Traffic) -> None:
    binary_traffic(traffic)
    result = compare(archive, deployment(), Window(last=300), policy=PromotionPolicy())
    tables = render(result)
    assert len(tables) == 4
    console = Console(record=True, width=200)
    for table in tables:
        console.print(table)
    text = console.export_text()
    for word in ("operations", "quality", "agreement", "promotion", "better", "canary"):
        assert word in text
    empty = render(compare(archive, deployment(), Window(since=T0 - 10, until=T0 - 5)))
    assert len(empty) == 2  # no labels, no policy


def test_latencies_print_in_fixed_decimals(archive: MemoryArchive, traffic: Traffic) -> None:
    for i in range(4):
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=1, latency_ms=12.345)
    traffic.flush()
    result = compare(archive, deployment(), Window(last=4))
    console = Console(record=True, width=200)
    console.print(render(result)[0])
    text = console.export_text()
    p50 = result.model("champ").operations.p50_ms
    assert p50 is not None and p50 > 10
    assert f"│  {p50:.2f} │" in text
    assert "e+01" not in text


def test_models_can_be_chosen_and_pinned_to_a_version(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    for i in range(6):
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=1)
        # two versions scored the same requests: old ones agree, new ones do not
        traffic.score(f"r{i}", "better", T0 + i, prediction=1, version="old")
        traffic.score(f"r{i}", "better", T0 + i + 1, prediction=0, version="new")
    traffic.flush()
    dep = deployment()
    result = compare(archive, dep, Window(last=6), models=["better@new", "better@old", "champ"])
    assert [m.model for m in result.models] == ["champ", "better@new", "better@old"]
    assert result.model("better@new").agreement.agreement == 0.0  # type: ignore[union-attr]
    assert result.model("better@old").agreement.agreement == 1.0  # type: ignore[union-attr]
    assert result.model("better@new").role == "challenger"
    # unpinned, the first score of each request counts
    plain = compare(archive, dep, Window(last=6), models=["better"]).model("better")
    assert plain.agreement is not None and plain.agreement.agreement == 1.0
    with pytest.raises(KeyError):
        result.model("worse")


def test_a_failed_score_gives_way_to_a_later_good_one(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    traffic.request("r0", T0)
    traffic.score("r0", "champ", T0, prediction=1)
    traffic.score("r0", "better", T0, error="TimeoutError: slow")
    traffic.score("r0", "better", T0 + 1, prediction=1)
    traffic.flush()
    better = compare(archive, deployment(), Window(last=1)).model("better")
    assert better.operations.errors == 0 and better.agreement is not None
    assert better.agreement.n == 1


def test_bad_arguments_are_input_errors(archive: MemoryArchive) -> None:
    with pytest.raises(InputError):
        compare(archive, deployment(), Window(last=1), top_k=-1)
    with pytest.raises(InputError):
        compare(archive, deployment(), Window(last=1), models=["@v1"])
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InputError):
            compare(archive, deployment(), Window(last=1), large_diff=bad)
    with pytest.raises(InputError):
        compare(archive, deployment(), Window(last=1), task="ranking")  # type: ignore[arg-type]
