"""Windows: the last N requests or a span of time, and paging through long spans."""

from __future__ import annotations

import math

import pytest
from compare_data import DEP, T0, Traffic

from rendezvous.archive import MemoryArchive
from rendezvous.compare import Window
from rendezvous.compare.window import pages
from rendezvous.errors import InputError


@pytest.mark.parametrize(
    ("kwargs", "loc"),
    [
        ({}, "window"),
        ({"last": 0}, "last"),
        ({"last": True}, "last"),
        ({"last": 5, "since": T0}, "last"),
        ({"since": T0, "until": T0}, "since"),
        ({"since": math.nan}, "since"),
        ({"until": math.inf}, "until"),
    ],
)
def test_a_bad_window_names_the_field(kwargs: dict[str, object], loc: str) -> None:
    with pytest.raises(InputError) as caught:
        Window(**kwargs)  # type: ignore[arg-type]
    assert caught.value.loc == loc


def test_to_dict_says_what_was_asked() -> None:
    assert Window(last=7).to_dict() == {"last": 7}
    assert Window(since=1.0).to_dict() == {"since": 1.0, "until": None}


def test_a_span_is_half_open(archive: MemoryArchive, traffic: Traffic) -> None:
    for i in range(10):
        traffic.request(f"r{i}", T0 + i)
    traffic.flush()
    got = Window(since=T0 + 2, until=T0 + 5).requests(archive, DEP)
    assert [r.id for r in got] == ["r2", "r3", "r4"]
    assert [r.id for r in Window(until=T0 + 2).requests(archive, DEP)] == ["r0", "r1"]


@pytest.mark.parametrize("now", [T0 + 10, T0 + 1e6, T0 - 1e6])
def test_last_n_are_the_newest_whatever_the_clock(
    archive: MemoryArchive, traffic: Traffic, now: float
) -> None:
    # Old traffic, a burst of recent traffic, and a clock near, far ahead or behind it all.
    for i in range(50):
        traffic.request(f"old{i}", T0 - 5e5 + i)
    for i in range(30):
        traffic.request(f"new{i}", T0 + i / 10)
    traffic.flush()
    got = Window(last=40).requests(archive, DEP, clock=lambda: now)
    assert [r.id for r in got] == [f"old{i}" for i in range(40, 50)] + [
        f"new{i}" for i in range(30)
    ]
    assert len(Window(last=1000).requests(archive, DEP, clock=lambda: now)) == 80
    assert Window(last=3).requests(MemoryArchive(), DEP) == []


def test_pages_neither_skip_nor_repeat_requests_sharing_a_time(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    times = [T0] * 7 + [T0 + 1] * 3 + [T0 + 2 + i for i in range(11)] + [T0 + 20] * 6
    for i, t in enumerate(times):
        traffic.request(f"r{i}", t)
    traffic.flush()
    for size in (1, 2, 3, 5, 100):
        seen = [r.id for page in pages(archive, DEP, None, None, size) for r in page]
        assert sorted(seen) == sorted(f"r{i}" for i in range(len(times))), size
        assert len(seen) == len(set(seen))
        bounded = [r.id for page in pages(archive, DEP, T0 + 1, T0 + 20, size) for r in page]
        assert bounded == [f"r{i}" for i, t in enumerate(times) if T0 + 1 <= t < T0 + 20]
