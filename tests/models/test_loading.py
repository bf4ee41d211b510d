"""load_model: dispatch, and every way loading can fail naming the problem."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from rendezvous.config import parse_deployment
from rendezvous.errors import ConfigError, MissingDependency, ModelLoadError
from rendezvous.models import (
    EstimatorModel,
    HttpModel,
    OnnxModel,
    RiverModel,
    RowFunctionModel,
    load_model,
)

from .helpers import FEATURES, config, load


@pytest.fixture
def workdir(tmp_path: Path, artifacts: Path) -> Path:
    """A private copy of the artifacts a test may delete or corrupt."""
    for name in ("lr.joblib", "lr.onnx", "river.pkl"):
        shutil.copy(artifacts / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("entry", "cls"),
    [
        ({"kind": "python", "source": "rdv_conf_rules:score"}, RowFunctionModel),
        ({"kind": "sklearn", "source": "lr.joblib"}, EstimatorModel),
        ({"kind": "onnx", "source": "lr.onnx"}, OnnxModel),
        ({"kind": "river", "source": "river.pkl"}, RiverModel),
        ({"kind": "http", "source": "http://127.0.0.1:9/invocations"}, HttpModel),
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) else "",
)
async def test_dispatches_on_kind(artifacts: Path, entry: dict[str, Any], cls: type) -> None:
    model = load(artifacts, entry)
    assert isinstance(model, cls)
    if isinstance(model, HttpModel):
        await model.aclose()


def test_a_decoy_is_not_loadable(tmp_path: Path) -> None:
    dep = parse_deployment(
        {
            "name": "d",
            "schema": {"n_features": 3},
            "models": [
                {"name": "rules", "kind": "python", "source": "x:y", "role": "champion"},
                {"name": "archive", "kind": "decoy", "role": "decoy"},
            ],
        },
        base_dir=tmp_path,
    )
    with pytest.raises(ModelLoadError, match="decoy computes nothing"):
        load_model(dep.model("archive"), dep)


@pytest.mark.parametrize("source", ["lr.joblib", "lr.onnx"])
def test_a_missing_file_is_a_config_error(tmp_path: Path, source: str) -> None:
    kind = source.rsplit(".", 1)[1].replace("joblib", "sklearn")
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path, {"kind": kind, "source": source})


@pytest.mark.parametrize(
    ("kind", "source"), [("sklearn", "lr.joblib"), ("onnx", "lr.onnx"), ("river", "river.pkl")]
)
def test_a_file_gone_since_parsing_is_a_load_error(workdir: Path, kind: str, source: str) -> None:
    cfg, dep = config(workdir, {"kind": kind, "source": source})
    (workdir / source).unlink()
    with pytest.raises(ModelLoadError, match=f"file not found: .*{source}"):
        load_model(cfg, dep)


@pytest.mark.parametrize(
    ("kind", "source", "message"),
    [
        ("sklearn", "lr.joblib", "cannot load .*lr.joblib with joblib"),
        ("onnx", "lr.onnx", "cannot load .*lr.onnx as ONNX"),
        ("river", "river.pkl", "cannot unpickle .*river.pkl"),
    ],
)
def test_a_corrupt_file(workdir: Path, kind: str, source: str, message: str) -> None:
    (workdir / source).write_bytes(b"\x80\x04 this is not a model \x00\xff" * 10)
    with pytest.raises(ModelLoadError, match=message):
        load(workdir, {"kind": kind, "source": source})


def test_a_file_holding_something_else(tmp_path: Path) -> None:
    with (tmp_path / "thing.joblib").open("wb") as f:
        pickle.dump({"not": "a model"}, f)
    with pytest.raises(ModelLoadError, match="holds a dict, which has no predict method"):
        load(tmp_path, {"kind": "sklearn", "source": "thing.joblib"})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rdv_no_such_module:score", "cannot import module 'rdv_no_such_module'"),
        ("rdv_conf_rules:no_such_rule", "module 'rdv_conf_rules' has no attribute 'no_such_rule'"),
        ("rdv conf:score", "expected an import string 'package.module:attribute'"),
    ],
)
@pytest.mark.parametrize("kind", ["python", "river"])
def test_a_bad_import_string(artifacts: Path, kind: str, source: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load(artifacts, {"kind": kind, "source": source})


def test_a_module_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "rdv_broken.py").write_text("raise RuntimeError('half written')\n")
    with pytest.raises(ModelLoadError, match="importing 'rdv_broken' failed: RuntimeError"):
        load(tmp_path, {"kind": "python", "source": "rdv_broken:score"})


@pytest.mark.parametrize(
    "entry",
    [
        {"kind": "python", "source": "rdv_conf_rules:score"},
        {"kind": "sklearn", "source": "lr.joblib"},
        {"kind": "onnx", "source": "lr.onnx"},
        {"kind": "river", "source": "river.pkl"},
        {"kind": "http", "source": "http://127.0.0.1:9/invocations"},
    ],
    ids=lambda e: e["kind"],
)
def test_an_unknown_option_is_named(artifacts: Path, entry: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match=r"unknown option.*'tiemout_ms'"):
        load(artifacts, {**entry, "options": {"tiemout_ms": 5}})


@pytest.mark.parametrize(
    ("module", "entry", "extra"),
    [
        ("onnxruntime", {"kind": "onnx", "source": "lr.onnx"}, "onnx"),
        ("joblib", {"kind": "sklearn", "source": "lr.joblib"}, "sklearn"),
        ("river", {"kind": "river", "source": "river.linear_model:LogisticRegression"}, "river"),
    ],
)
def test_a_missing_extra_says_what_to_install(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch, module: str, entry: dict[str, Any], extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependency, match=rf"pip install 'rendezvous-ml\[{extra}\]'"):
        load(artifacts, entry)


def test_skops_files_need_skops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.skops").write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "skops", None)
    with pytest.raises(MissingDependency, match="'skops' package"):
        load(tmp_path, {"kind": "sklearn", "source": "m.skops"})


def test_the_schema_width_must_match_the_model(artifacts: Path) -> None:
    for kind, source in (("sklearn", "lr.joblib"), ("onnx", "lr.onnx")):
        with pytest.raises(ModelLoadError, match=r"takes 30 features.*schema has 5"):
            load(artifacts, {"kind": kind, "source": source}, schema={"n_features": 5})


def test_positional_schemas_name_features_x0_x1(artifacts: Path) -> None:
    model = load(artifacts, {"kind": "sklearn", "source": "lr.joblib"}, schema={"n_features": 30})
    assert model.info.features == tuple(f"x{i}" for i in range(30))
    assert len(FEATURES) == 30
