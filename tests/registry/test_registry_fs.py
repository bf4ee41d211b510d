"""The filesystem registry's own promises: its layout, atomic writes, damaged files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_backends import FakeClock

from rendezvous.errors import NotFound, RendezvousError
from rendezvous.registry import (
    CHAMPION,
    ArtifactMismatch,
    CorruptRegistry,
    FileRegistry,
    TrainingWindow,
    Validation,
    _layout,
    filesystem,
)


@pytest.fixture
def registry(tmp_path: Path, clock: FakeClock) -> FileRegistry:
    return FileRegistry(tmp_path / "reg", clock=clock)


def test_layout_on_disk(registry: FileRegistry, clock: FakeClock) -> None:
    registry.publish(
        "fraud",
        b"weights",
        filename="model.joblib",
        trigger="initial",
        training=TrainingWindow(n_examples=10, start=1.0, end=2.0),
        validation=Validation(decision="initial", candidate={"auc": 0.9}),
        extra={"owner": "risk"},
    )
    registry.set_alias("fraud", CHAMPION, "1")
    root = registry.root
    assert sorted(p.name for p in (root / "fraud" / "1").iterdir()) == [
        "metadata.json",
        "model.joblib",
    ]
    meta = json.loads((root / "fraud" / "1" / "metadata.json").read_text())
    assert meta == {
        "model": "fraud",
        "version": "1",
        "created": clock.now,
        "artifact": "model.joblib",
        "sha256": hashlib.sha256(b"weights").hexdigest(),
        "size": 7,
        "trigger": "initial",
        "parent": None,
        "training": {"n_examples": 10, "start": 1.0, "end": 2.0},
        "validation": {"decision": "initial", "candidate": {"auc": 0.9}, "serving": {}},
        "extra": {"owner": "risk"},
    }
    aliases = json.loads((root / "fraud" / "aliases.json").read_text())
    assert aliases["aliases"] == {CHAMPION: "1"}
    assert list((root / ".tmp").iterdir()) == []  # nothing left behind


def test_a_failed_publish_leaves_no_staging_behind(registry: FileRegistry) -> None:
    def broken(path: Path) -> None:
        raise RuntimeError("serialisation failed")

    with pytest.raises(RuntimeError):
        registry.publish("fraud", broken, filename="m.bin")
    assert list((registry.root / ".tmp").iterdir()) == []


def test_a_publisher_that_loses_a_number_takes_the_next(
    registry: FileRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.publish("fraud", b"one", filename="m.bin")
    layout = registry._layout
    real = layout.version_numbers
    # The first look misses version 1, as if another publisher had just taken it.
    stale: Iterator[list[int]] = iter([[]])

    def looks(model: str) -> list[int]:
        return next(stale, None) or real(model)

    monkeypatch.setattr(layout, "version_numbers", looks)
    info = registry.publish("fraud", b"two", filename="m.bin")
    assert info.version == "2"
    assert registry.get("fraud", "2").sha256 == info.sha256
    assert registry.load_artifact("fraud", "1").read_bytes() == b"one"
    assert registry.load_artifact("fraud", "2").read_bytes() == b"two"


def test_corrupt_metadata_names_the_file(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    path = registry.root / "fraud" / "1" / "metadata.json"
    path.write_text("{not json")
    with pytest.raises(CorruptRegistry, match=r"metadata\.json: invalid version metadata") as e:
        registry.get("fraud", "1")
    assert e.value.path == path
    assert isinstance(e.value, RendezvousError)
    with pytest.raises(CorruptRegistry):
        registry.versions("fraud")


def test_metadata_with_a_missing_field(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    path = registry.root / "fraud" / "1" / "metadata.json"
    data = json.loads(path.read_text())
    del data["sha256"]
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptRegistry, match="sha256: Field required"):
        registry.get("fraud", "1")


def test_metadata_of_another_version(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    registry.publish("fraud", b"w", filename="m.bin")
    meta = registry.root / "fraud"
    (meta / "2" / "metadata.json").write_bytes((meta / "1" / "metadata.json").read_bytes())
    with pytest.raises(CorruptRegistry, match="describes fraud version 1, not fraud 2"):
        registry.get("fraud", "2")


def test_corrupt_aliases_file(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    path = registry.root / "fraud" / "aliases.json"
    path.write_text('{"aliases": {"champion": 3.5j}}')
    with pytest.raises(CorruptRegistry, match=r"aliases\.json: invalid aliases file") as e:
        registry.aliases("fraud")
    assert e.value.path == path


def test_a_tampered_artifact_is_refused(registry: FileRegistry) -> None:
    info = registry.publish("fraud", b"weights", filename="m.bin")
    path = registry.root / "fraud" / "1" / "m.bin"
    path.write_bytes(b"trojan!")
    with pytest.raises(ArtifactMismatch, match=rf"m\.bin: sha256 is .* but {info.sha256}") as e:
        registry.load_artifact("fraud", "1")
    assert e.value.expected == info.sha256
    assert e.value.path == path


def test_a_missing_artifact(registry: FileRegistry) -> None:
    registry.publish("fraud", b"weights", filename="m.bin")
    (registry.root / "fraud" / "1" / "m.bin").unlink()
    with pytest.raises(CorruptRegistry, match="cannot read the artifact"):
        registry.load_artifact("fraud", "1")


def test_alias_history_is_bounded(registry: FileRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filesystem, "HISTORY_LIMIT", 2)
    for _ in range(5):
        v = registry.publish("fraud", b"w", filename="m.bin").version
        registry.set_alias("fraud", CHAMPION, v)
    state = registry._layout.read_aliases("fraud")
    assert state.history[CHAMPION] == ["3", "4"]
    assert registry.rollback("fraud") == "4"
    assert registry.rollback("fraud") == "3"
    with pytest.raises(NotFound):
        registry.rollback("fraud")


def test_stray_entries_are_not_versions_or_models(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    (registry.root / "fraud" / "notes.txt").write_text("hi")
    (registry.root / "fraud" / "draft").mkdir()
    (registry.root / "empty-model").mkdir()
    (registry.root / "README").write_text("registry")
    assert [v.version for v in registry.versions("fraud")] == ["1"]
    assert registry.models() == ["fraud"]
    assert _layout.Layout(registry.root).model_dirs() == ["empty-model", "fraud"]


def test_reopening_sees_everything(registry: FileRegistry, tmp_path: Path) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    registry.set_alias("fraud", CHAMPION, "1")
    again = FileRegistry(registry.root)
    assert again.aliases("fraud") == {CHAMPION: "1"}
    assert again.get("fraud", "1") == registry.get("fraud", "1")
    assert repr(again) == f"FileRegistry({str(registry.root)!r})"


def test_names_never_reach_outside_the_root(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    outside = registry.root.parent / "1"
    outside.mkdir()
    (outside / "metadata.json").write_text("{}")
    for model in ("..", "../reg/fraud", "/etc"):
        with pytest.raises(NotFound, match="unknown model"):
            registry.get(model, "1")
        with pytest.raises(NotFound, match="unknown model"):
            registry.versions(model)


def test_metadata_naming_a_path_as_artifact(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    path = registry.root / "fraud" / "1" / "metadata.json"
    path.write_text(path.read_text().replace('"m.bin"', '"../../secret"'))
    with pytest.raises(CorruptRegistry, match=r"invalid artifact file name '\.\./\.\./secret'"):
        registry.load_artifact("fraud", "1")


def test_a_cleared_staging_directory_is_recreated(registry: FileRegistry) -> None:
    registry.publish("fraud", b"w", filename="m.bin")
    (registry.root / ".tmp").rmdir()
    assert registry.publish("fraud", b"w", filename="m.bin").version == "2"
