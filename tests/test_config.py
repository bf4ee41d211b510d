"""The deployment file: typed objects, every problem reported with its field path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rendezvous.config import Role, load_deployment, parse_deployment
from rendezvous.errors import ConfigError


def base(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "fraud",
        "schema": {"features": ["amount", "age"]},
        "models": [
            {"name": "rules", "kind": "python", "source": "mod:fn", "role": "champion"},
            {"name": "other", "kind": "python", "source": "mod:fn2"},
        ],
    }
    data.update(over)
    return data


def problems(data: dict[str, Any], tmp_path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_deployment(data, base_dir=tmp_path)
    return [str(p) for p in info.value.problems]


def test_a_valid_file_gives_typed_objects_with_defaults() -> None:
    dep = parse_deployment(base())
    assert dep.name == "fraud"
    assert dep.input_schema.names == ["amount", "age"]
    assert dep.champion.name == "rules"
    assert dep.model("other").role is Role.CHALLENGER
    assert [e.model for e in dep.schedule_entries()] == ["rules", "other"]
    assert dep.bus == "memory"
    assert dep.deadline_ms == 50


def test_positional_schema_names_its_features() -> None:
    dep = parse_deployment(base(schema={"n_features": 3}))
    assert dep.input_schema.names == ["x0", "x1", "x2"]
    assert dep.input_schema.width == 3


def test_unknown_keys_are_errors_with_their_path() -> None:
    data = base(colour="blue")
    data["models"][1]["sauce"] = "x"
    assert sorted(problems(data)) == [
        "colour: unknown key (not part of the deployment file format)",
        "models[1].sauce: unknown key (not part of the deployment file format)",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = base(deadline_ms=-1, bus="kafka://x")
    data["models"].append(
        {"name": "xgb", "kind": "sklearn", "source": "missing.joblib", "role": "challenger"}
    )
    found = problems(data, tmp_path)
    assert any(p.startswith("deadline_ms: ") for p in found)
    assert any(p.startswith("bus: expected 'memory'") for p in found)
    assert f"models[2].source: file not found: {tmp_path / 'missing.joblib'}" in found


def test_cross_checks_name_the_field() -> None:
    data = base(schedule=["other", "ghost", "canary"])
    data["models"][1]["role"] = "champion"
    data["models"].append({"name": "canary", "kind": "python", "source": "m:f", "role": "canary"})
    found = problems(data)
    assert "models: expected exactly one champion, found 2" in found
    assert "schedule[1]: unknown model 'ghost'" in found
    assert any(p.startswith("schedule[2]: 'canary' cannot answer") for p in found)


def test_duplicate_model_names_are_refused() -> None:
    data = base()
    data["models"][1]["name"] = "rules"
    assert "models: duplicate model names ['rules']" in problems(data)


def test_decoys_take_no_source() -> None:
    data = base()
    data["models"].append({"name": "d", "kind": "decoy", "role": "decoy", "source": "x:y"})
    assert problems(data) == ["models[2]: a decoy computes nothing and takes no 'source'"]
    data["models"][2] = {"name": "d", "kind": "decoy", "role": "challenger"}
    assert problems(data) == ["models[2]: a decoy has kind: decoy and role: decoy together"]


def test_schedule_entries_may_carry_wait_budgets() -> None:
    dep = parse_deployment(base(schedule=[{"model": "rules", "wait_ms": 20}, "other"]))
    entries = dep.schedule_entries()
    assert [(e.model, e.wait_ms) for e in entries] == [("rules", 20), ("other", None)]


def test_default_must_carry_a_prediction() -> None:
    assert problems(base(default={"label": 1}))[0].startswith("default: expected {prediction")


def test_lookup_tables_must_exist(tmp_path: Path) -> None:
    data = base(enrichers=[{"kind": "lookup", "table": "nope.csv", "key": "id"}])
    assert problems(data, tmp_path) == [f"enrichers[0].table: file not found: {tmp_path}/nope.csv"]


def test_schema_needs_exactly_one_form() -> None:
    found = problems(base(schema={"features": ["a"], "n_features": 1}))
    assert found == ["schema: give exactly one of 'features' (a list of names) or 'n_features'"]


def test_yaml_and_json_files_load_relative_to_their_directory(tmp_path: Path) -> None:
    (tmp_path / "m.joblib").write_bytes(b"x")
    data = base()
    data["models"][1] = {"name": "sk", "kind": "sklearn", "source": "m.joblib"}
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "d.yaml").write_text(
        "name: fraud\nschema: {features: [amount, age]}\nmodels:\n"
        "  - {name: rules, kind: python, source: 'mod:fn', role: champion}\n"
        "  - {name: sk, kind: sklearn, source: m.joblib}\n"
    )
    for name in ("d.json", "d.yaml"):
        dep = load_deployment(tmp_path / name)
        assert dep.resolve(dep.model("sk").source or "") == tmp_path / "m.joblib"


def test_unreadable_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_deployment(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML/JSON"):
        load_deployment(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top"):
        load_deployment(tmp_path / "list.yaml")
