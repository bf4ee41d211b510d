"""Events and the in-process notifier."""

from __future__ import annotations

import logging

import pytest

from rendezvous.registry import CHAMPION, Event, EventKind, LocalNotifier


def test_events_cross_process_boundaries_as_json() -> None:
    for event in (
        Event("fraud", "3", EventKind.PUBLISHED),
        Event("fraud", "2", EventKind.ROLLBACK, CHAMPION),
    ):
        assert Event.from_json(event.to_json()) == event
        assert Event.from_json(event.to_json().decode()) == event
    assert Event.from_json(b'{"model":"m","version":"1","kind":"alias","alias":"x"}') == Event(
        "m", "1", EventKind.ALIAS, "x"
    )


def test_listeners_are_called_in_subscription_order() -> None:
    notifier = LocalNotifier()
    calls: list[str] = []
    notifier.subscribe(lambda e: calls.append(f"a{e.version}"))
    notifier.subscribe(lambda e: calls.append(f"b{e.version}"))
    notifier.publish(Event("m", "1", EventKind.PUBLISHED))
    assert calls == ["a1", "b1"]
    assert repr(notifier) == "<LocalNotifier listeners=2>"


def test_a_listener_may_unsubscribe_while_being_called() -> None:
    notifier = LocalNotifier()
    calls: list[str] = []

    def once(event: Event) -> None:
        calls.append("once")
        notifier.unsubscribe(once)

    notifier.subscribe(once)
    notifier.subscribe(lambda e: calls.append("always"))
    notifier.publish(Event("m", "1", EventKind.PUBLISHED))
    notifier.publish(Event("m", "2", EventKind.PUBLISHED))
    assert calls == ["once", "always", "always"]
    notifier.unsubscribe(once)  # no longer subscribed: ignored


def test_a_failing_listener_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LocalNotifier()
    heard: list[Event] = []

    def broken(event: Event) -> None:
        raise ValueError("boom")

    notifier.subscribe(broken)
    notifier.subscribe(heard.append)
    event = Event("m", "1", EventKind.PUBLISHED)
    with caplog.at_level(logging.ERROR, logger="rendezvous.registry"):
        notifier.publish(event)
    assert heard == [event]
    assert "boom" in caplog.text
