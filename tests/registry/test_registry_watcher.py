"""The Watcher: changes made by any process, learnt by polling the registry's directory."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from pathlib import Path

import pytest
from registry_backends import change_registry, open_file_registry

from rendezvous.registry import (
    CHAMPION,
    Event,
    EventKind,
    FileRegistry,
    RegistryError,
    Watcher,
)

P, A, R = EventKind.PUBLISHED, EventKind.ALIAS, EventKind.ROLLBACK


@pytest.fixture
def registry(tmp_path: Path) -> FileRegistry:
    return FileRegistry(tmp_path / "reg")


def publish(registry: FileRegistry, model: str = "fraud") -> str:
    return registry.publish(model, b"w", filename="m.bin").version


def test_what_exists_at_construction_is_the_baseline(registry: FileRegistry) -> None:
    publish(registry)
    registry.set_alias("fraud", CHAMPION, "1")
    watcher = Watcher(registry)
    assert watcher.poll() == []


def test_poll_reports_each_change_once_with_its_kind(registry: FileRegistry) -> None:
    publish(registry)
    watcher = Watcher(registry.root)
    heard: list[Event] = []
    watcher.subscribe(heard.append)
    publish(registry)
    publish(registry)
    registry.set_alias("fraud", CHAMPION, "2")
    registry.set_alias("fraud", "challenger", "3")
    assert watcher.poll() == [
        Event("fraud", "2", P),
        Event("fraud", "3", P),
        Event("fraud", "3", A, "challenger"),  # aliases by name: one look has no order
        Event("fraud", "2", A, CHAMPION),
    ]
    assert watcher.poll() == []
    registry.set_alias("fraud", CHAMPION, "3")
    registry.rollback("fraud")
    # Between two looks the champion went 2 → 3 → 2: only the last move is seen, but seen.
    assert watcher.poll() == [Event("fraud", "2", R, CHAMPION)]
    registry.rollback("fraud", to="1")
    registry.set_alias("fraud", "challenger", "3")  # set again where it was: still a move
    assert watcher.poll() == [
        Event("fraud", "3", A, "challenger"),
        Event("fraud", "1", R, CHAMPION),
    ]
    assert len(heard) == 7
    watcher.unsubscribe(heard.append)


def test_models_published_later_and_the_models_filter(registry: FileRegistry) -> None:
    everything = Watcher(registry)
    only_churn = Watcher(registry, models=["churn"])
    publish(registry, "fraud")
    publish(registry, "churn")
    registry.set_alias("churn", CHAMPION, "1")
    assert everything.poll() == [
        Event("churn", "1", P),
        Event("churn", "1", A, CHAMPION),
        Event("fraud", "1", P),
    ]
    assert only_churn.poll() == [Event("churn", "1", P), Event("churn", "1", A, CHAMPION)]


def test_changes_made_by_another_process(registry: FileRegistry) -> None:
    watcher = Watcher(registry)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=change_registry, args=(open_file_registry, str(registry.root)))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    proc.close()
    assert watcher.poll() == [
        Event("remote", "1", P),
        Event("remote", "2", P),
        Event("remote", "1", A, "challenger"),
        Event("remote", "1", R, CHAMPION),  # set to 1, then 2, then rolled back to 1
    ]


def test_started_watcher_delivers_changes_of_another_process(registry: FileRegistry) -> None:
    heard: list[Event] = []
    rolled_back = threading.Event()

    def listen(event: Event) -> None:
        heard.append(event)
        if event.kind is R:
            rolled_back.set()

    ctx = multiprocessing.get_context("spawn")
    with Watcher(registry, interval=0.02) as watcher:
        watcher.subscribe(listen)
        assert watcher.running
        proc = ctx.Process(target=change_registry, args=(open_file_registry, str(registry.root)))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0
        proc.close()
        assert rolled_back.wait(10)
    assert not watcher.running
    # Polls may fall between any two changes: every version is heard once, the end is a rollback.
    assert [e for e in heard if e.kind is P] == [Event("remote", "1", P), Event("remote", "2", P)]
    assert heard[-1] == Event("remote", "1", R, CHAMPION)


async def test_async_lifecycle_and_idempotent_stop(registry: FileRegistry) -> None:
    heard = threading.Event()
    async with Watcher(registry, interval=0.01) as watcher:
        watcher.subscribe(lambda event: heard.set())
        watcher.start()  # already running: nothing happens
        publish(registry)
        assert heard.wait(10)
    watcher.stop()
    assert not watcher.running


def test_a_failing_listener_does_not_stop_the_watcher(
    registry: FileRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    watcher = Watcher(registry)
    watcher.subscribe(broken)
    watcher.subscribe(heard.append)
    publish(registry)
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"):
        assert watcher.poll() == [Event("fraud", "1", P)]
    assert heard == [Event("fraud", "1", P)]
    assert "listener bug" in caplog.text


def test_an_unreadable_aliases_file_is_skipped_until_repaired(
    registry: FileRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    publish(registry)
    watcher = Watcher(registry)
    path = registry.root / "fraud" / "aliases.json"
    path.write_text("{broken")
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"):
        assert watcher.poll() == []
    assert "unreadable aliases of model 'fraud'" in caplog.text
    path.unlink()
    registry.set_alias("fraud", CHAMPION, "1")
    assert watcher.poll() == [Event("fraud", "1", A, CHAMPION)]


def test_a_poll_that_fails_in_the_thread_is_logged_and_retried(
    registry: FileRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = Watcher(registry, interval=0.01)
    failed = threading.Event()
    real = watcher.poll

    def flaky() -> list[Event]:
        if not failed.is_set():
            failed.set()
            raise OSError("stale NFS handle")
        return real()

    monkeypatch.setattr(watcher, "poll", flaky)
    heard = threading.Event()
    watcher.subscribe(lambda event: heard.set())
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"), watcher:
        publish(registry)
        assert heard.wait(10)
    assert "stale NFS handle" in caplog.text


def test_bad_arguments(registry: FileRegistry) -> None:
    with pytest.raises(RegistryError, match="interval must be positive"):
        Watcher(registry, interval=0)
    with pytest.raises(RegistryError, match="invalid model name"):
        Watcher(registry, models=["../x"])
    assert repr(Watcher(registry, interval=2)) == f"Watcher({str(registry.root)!r}, interval=2)"
