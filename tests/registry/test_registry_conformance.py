"""The Registry contract, run over every backend in ``registry_backends.BACKENDS``."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from registry_backends import Backend, FakeClock, publish_many

from rendezvous.errors import NotFound, RendezvousError
from rendezvous.registry import (
    CHAMPION,
    Event,
    EventKind,
    Listener,
    LocalNotifier,
    Registry,
    RegistryError,
    TrainingWindow,
    Trigger,
    Validation,
)


def publish(registry: Registry, content: bytes = b"weights", model: str = "fraud") -> str:
    return registry.publish(model, content, filename="model.bin").version


def champions(registry: Registry, *versions: str, model: str = "fraud") -> None:
    for v in versions:
        registry.set_alias(model, CHAMPION, v)


# -- publish, list, show --------------------------------------------------------------------


def test_versions_are_consecutive_integers_from_one(registry: Registry) -> None:
    assert [publish(registry) for _ in range(3)] == ["1", "2", "3"]
    assert [v.version for v in registry.versions("fraud")] == ["1", "2", "3"]
    assert publish(registry, model="other") == "1"  # numbered per model
    assert registry.models() == ["fraud", "other"]


def test_metadata_round_trips(registry: Registry, clock: FakeClock) -> None:
    publish(registry)
    clock.now = 1_700_000_123.5
    training = TrainingWindow(n_examples=500, start=1_699_990_000.0, end=1_700_000_000.0)
    validation = Validation(
        decision="promote", candidate={"accuracy": 0.93}, serving={"accuracy": 0.91}
    )
    info = registry.publish(
        "fraud",
        b"better weights",
        filename="model.bin",
        trigger=Trigger.DRIFT,
        parent="1",
        training=training,
        validation=validation,
        extra={"learner": "river", "params": {"l2": 0.1}},
    )
    shown = registry.get("fraud", "2")
    assert shown == info
    assert shown.created == 1_700_000_123.5  # from the injected clock
    assert shown.trigger is Trigger.DRIFT
    assert shown.parent == "1"
    assert shown.training == training
    assert shown.validation == validation
    assert shown.extra == {"learner": "river", "params": {"l2": 0.1}}
    assert shown.artifact == "model.bin"
    assert shown.size == len(b"better weights")
    assert len(shown.sha256) == 64
    assert registry.get("fraud", 2) == shown  # an int names the same version


def test_defaults_of_a_plain_publish(registry: Registry, clock: FakeClock) -> None:
    info = registry.publish("fraud", b"w", filename="m.bin")
    assert (info.trigger, info.parent, info.training, info.validation, info.extra) == (
        Trigger.MANUAL,
        None,
        None,
        None,
        {},
    )
    assert info.created == clock.now


def test_trigger_by_name_and_parent_by_alias(registry: Registry) -> None:
    champions(registry, publish(registry))
    info = registry.publish("fraud", b"w", filename="m.bin", trigger="min_samples", parent=CHAMPION)
    assert info.trigger is Trigger.MIN_SAMPLES
    assert info.parent == "1"


def test_artifact_from_bytes_file_or_writer(registry: Registry, tmp_path: Path) -> None:
    source = tmp_path / "estimator.joblib"
    source.write_bytes(b"from a file")
    by_file = registry.publish("fraud", source)
    by_name = registry.publish("fraud", str(source), filename="renamed.joblib")
    by_writer = registry.publish(
        "fraud", lambda path: path.write_bytes(b"written"), filename="w.bin"
    )
    assert by_file.artifact == "estimator.joblib"
    assert registry.load_artifact("fraud", by_file.version).read_bytes() == b"from a file"
    assert registry.load_artifact("fraud", by_name.version).name == "renamed.joblib"
    assert registry.load_artifact("fraud", by_writer.version).read_bytes() == b"written"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "../escape"}, "invalid model name"),
        ({"model": ".hidden"}, "invalid model name"),
        ({"filename": None}, "filename="),
        ({"filename": "metadata.json"}, "invalid artifact file name"),
        ({"filename": "a/b.bin"}, "invalid artifact file name"),
        ({"trigger": "cron"}, "invalid trigger 'cron'.*drift"),
        ({"extra": {"when": object()}}, "JSON-serialisable"),
    ],
)
def test_publish_refuses_bad_arguments(
    registry: Registry, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"model": "fraud", "filename": "m.bin", **kwargs}
    with pytest.raises(RegistryError, match=match):
        registry.publish(args.pop("model"), b"w", **args)
    assert isinstance(RegistryError("x"), RendezvousError)


def test_publish_refuses_missing_source_file(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="artifact file not found"):
        registry.publish("fraud", tmp_path / "nope.joblib")
    with pytest.raises(NotFound):
        registry.versions("fraud")  # nothing half-published


def test_a_failing_writer_publishes_nothing(registry: Registry) -> None:
    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.publish("fraud", broken, filename="m.bin")
    assert publish(registry) == "1"


def test_unknown_parent(registry: Registry) -> None:
    publish(registry)
    with pytest.raises(NotFound, match="no version '7'"):
        registry.publish("fraud", b"w", filename="m.bin", parent="7")


# -- not found ------------------------------------------------------------------------------


def test_unknown_model_names_the_known_ones(registry: Registry) -> None:
    publish(registry)
    publish(registry, model="churn")
    for call in (
        lambda: registry.versions("nope"),
        lambda: registry.get("nope", "1"),
        lambda: registry.aliases("nope"),
        lambda: registry.resolve("nope", "latest"),
        lambda: registry.set_alias("nope", CHAMPION, "1"),
        lambda: registry.rollback("nope"),
        lambda: registry.load_artifact("nope", "1"),
    ):
        with pytest.raises(NotFound, match=r"unknown model 'nope'.*churn, fraud"):
            call()


def test_unknown_version_names_the_existing_ones(registry: Registry) -> None:
    publish(registry)
    publish(registry)
    for version in ("3", "0", "01", "x", 9):
        with pytest.raises(NotFound, match=rf"no version '{version}' \(versions: 1, 2\)"):
            registry.get("fraud", version)
    with pytest.raises(NotFound, match="no version '3'"):
        registry.load_artifact("fraud", "3")
    with pytest.raises(NotFound, match="no version '3'"):
        registry.set_alias("fraud", CHAMPION, "3")


def test_unknown_alias_names_the_existing_ones(registry: Registry) -> None:
    champions(registry, publish(registry))
    with pytest.raises(NotFound, match=r"no alias 'challenger' \(aliases: champion → 1\)"):
        registry.resolve("fraud", "challenger")


def test_a_model_without_versions_is_unknown(registry: Registry) -> None:
    assert registry.models() == []
    with pytest.raises(NotFound, match=r"unknown model 'fraud'.*\(models: none\)"):
        registry.versions("fraud")


# -- aliases --------------------------------------------------------------------------------


def test_aliases_point_at_versions(registry: Registry) -> None:
    v1, v2, v3 = (publish(registry) for _ in range(3))
    assert registry.aliases("fraud") == {}
    registry.set_alias("fraud", CHAMPION, v1)
    registry.set_alias("fraud", "challenger", 3)
    registry.set_alias("fraud", "canary-2024.1", "latest")
    assert registry.aliases("fraud") == {CHAMPION: v1, "challenger": v3, "canary-2024.1": v3}
    assert registry.resolve("fraud", CHAMPION) == v1
    assert registry.resolve("fraud", "latest") == v3
    assert registry.resolve("fraud", 2) == v2
    registry.set_alias("fraud", CHAMPION, "challenger")  # promote: an alias names a version
    assert registry.resolve("fraud", CHAMPION) == v3


@pytest.mark.parametrize("alias", ["3", "latest", "", "a b", "-x", "../x"])
def test_alias_names_that_would_be_ambiguous_are_refused(registry: Registry, alias: str) -> None:
    publish(registry)
    with pytest.raises(RegistryError, match="invalid alias"):
        registry.set_alias("fraud", alias, "1")


# -- rollback -------------------------------------------------------------------------------


def test_rollback_returns_to_the_previous_champion(registry: Registry) -> None:
    versions = [publish(registry) for _ in range(4)]
    champions(registry, *versions)
    assert registry.rollback("fraud") == "3"
    assert registry.resolve("fraud", CHAMPION) == "3"
    assert registry.rollback("fraud") == "2"  # further back, never forth
    assert registry.rollback("fraud") == "1"
    with pytest.raises(NotFound, match=r"no earlier champion .*champion is version 1"):
        registry.rollback("fraud")
    assert registry.resolve("fraud", CHAMPION) == "1"


@pytest.mark.parametrize("to", ["1", "2", "3", 1])
def test_rollback_to_any_earlier_version(registry: Registry, to: str | int) -> None:
    versions = [publish(registry) for _ in range(5)]
    champions(registry, "2", "4", "5")
    assert registry.rollback("fraud", to=to) == str(to)
    assert registry.resolve("fraud", CHAMPION) == str(to)
    assert registry.aliases("fraud")[CHAMPION] == str(to)
    assert versions == ["1", "2", "3", "4", "5"]


def test_rollback_to_a_former_champion_forgets_the_ones_after_it(registry: Registry) -> None:
    for _ in range(4):
        publish(registry)
    champions(registry, "1", "2", "3", "4")
    assert registry.rollback("fraud", to="2") == "2"
    assert registry.rollback("fraud") == "1"


def test_rollback_needs_a_champion_and_a_known_target(registry: Registry) -> None:
    publish(registry)
    publish(registry)
    with pytest.raises(NotFound, match="no champion to roll back"):
        registry.rollback("fraud")
    champions(registry, "2")
    with pytest.raises(NotFound, match="no earlier champion"):
        registry.rollback("fraud")
    with pytest.raises(NotFound, match="no version '9'"):
        registry.rollback("fraud", to="9")
    assert registry.rollback("fraud", to="1") == "1"


def test_setting_the_same_champion_again_adds_no_history(registry: Registry) -> None:
    publish(registry)
    publish(registry)
    champions(registry, "1", "2", "2", "2")
    assert registry.rollback("fraud") == "1"


# -- notifications --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


def test_subscribers_hear_every_change_in_order(registry: Registry) -> None:
    heard = Recorder()
    registry.subscribe(heard)
    publish(registry)
    publish(registry)
    champions(registry, "1", "2")
    registry.set_alias("fraud", "challenger", "1")
    registry.rollback("fraud")
    assert heard.events == [
        Event("fraud", "1", EventKind.PUBLISHED),
        Event("fraud", "2", EventKind.PUBLISHED),
        Event("fraud", "1", EventKind.ALIAS, CHAMPION),
        Event("fraud", "2", EventKind.ALIAS, CHAMPION),
        Event("fraud", "1", EventKind.ALIAS, "challenger"),
        Event("fraud", "1", EventKind.ROLLBACK, CHAMPION),
    ]
    registry.unsubscribe(heard)
    publish(registry)
    assert len(heard.events) == 6


def test_a_failing_subscriber_breaks_neither_publisher_nor_others(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    heard = Recorder()
    registry.subscribe(broken)
    registry.subscribe(heard)
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"):
        assert publish(registry) == "1"
    assert heard.events == [Event("fraud", "1", EventKind.PUBLISHED)]
    assert "listener bug" in caplog.text


def test_a_failing_notifier_does_not_fail_the_change(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(LocalNotifier):
        def publish(self, event: Event) -> None:
            raise ConnectionError("broker down")

    registry = backend.open(tmp_path, notifier=Down())
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"):
        assert publish(registry) == "1"
    assert "broker down" in caplog.text
    assert [v.version for v in registry.versions("fraud")] == ["1"]


def test_any_notifier_plugs_in(backend: Backend, tmp_path: Path) -> None:
    class Broker:
        """What a Redis pub/sub notifier does: serialise, carry, deliver."""

        def __init__(self) -> None:
            self.wire: list[bytes] = []
            self.listeners: list[Listener] = []

        def publish(self, event: Event) -> None:
            self.wire.append(event.to_json())
            for listener in self.listeners:
                listener(Event.from_json(self.wire[-1]))

        def subscribe(self, callback: Listener) -> None:
            self.listeners.append(callback)

        def unsubscribe(self, callback: Listener) -> None:
            self.listeners.remove(callback)

    broker = Broker()
    registry = backend.open(tmp_path, notifier=broker)
    heard = Recorder()
    registry.subscribe(heard)
    champions(registry, publish(registry))
    assert heard.events == [
        Event("fraud", "1", EventKind.PUBLISHED),
        Event("fraud", "1", EventKind.ALIAS, CHAMPION),
    ]
    assert len(broker.wire) == 2


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_publishers_in_threads_get_unique_consecutive_versions(
    registry: Registry,
) -> None:
    n_threads, per_thread = 8, 10
    barrier = threading.Barrier(n_threads)
    got: dict[str, bytes] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def publisher(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                content = f"thread-{t}-{i}".encode()
                version = publish(registry, content)
                with lock:
                    assert version not in got
                    got[version] = content
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    total = n_threads * per_thread
    assert sorted(got, key=int) == [str(n) for n in range(1, total + 1)]
    for version, content in got.items():
        assert registry.load_artifact("fraud", version).read_bytes() == content


def test_concurrent_publishers_in_processes_get_unique_consecutive_versions(
    backend: Backend, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    n_procs, per_proc = 2, 15
    barrier = ctx.Barrier(n_procs)
    results = ctx.Queue()
    root = str(tmp_path / "shared")
    procs = [
        ctx.Process(
            target=publish_many, args=(backend.open, root, "fraud", per_proc, barrier, results)
        )
        for _ in range(n_procs)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            p.close()
        results.close()
        results.join_thread()
    registry = backend.open(Path(root))
    by_version: dict[str, str] = {}
    for tag, versions in outcomes:
        assert [int(v) for v in versions] == sorted(int(v) for v in versions)  # per process
        for v in versions:
            assert v not in by_version
            by_version[v] = tag
    total = n_procs * per_proc
    assert sorted(by_version, key=int) == [str(n) for n in range(1, total + 1)]
    for v, tag in by_version.items():
        assert registry.load_artifact("fraud", v).read_bytes().startswith(tag.encode())


def test_a_reader_never_sees_a_partial_version(registry: Registry) -> None:
    size, count = 4 << 20, 8
    done = threading.Event()
    errors: list[BaseException] = []
    seen: set[str] = set()

    def writer() -> None:
        try:
            for i in range(count):
                publish(registry, bytes([i]) * size)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                try:
                    infos = registry.versions("fraud")
                except NotFound:
                    continue  # nothing published yet
                for info in infos:
                    data = registry.load_artifact("fraud", info.version).read_bytes()
                    assert len(data) == info.size == size
                    assert data == bytes([int(info.version) - 1]) * size
                    seen.add(info.version)
                assert int(registry.resolve("fraud", "latest")) >= int(infos[-1].version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert seen  # the reader did read while the writer was writing
    assert len(registry.versions("fraud")) == count
