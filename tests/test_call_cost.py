"""What a call cost its thread (rendezvous.call_cost): the figures the inline policy judges."""

from __future__ import annotations

import gc
import sys
import time

import pytest

from rendezvous.call_cost import COLLECTOR, CallCost, Usage, usage

linux = pytest.mark.skipif(sys.platform != "linux", reason="voluntary switches: Linux only")


@linux
def test_a_thread_that_sleeps_has_waited() -> None:
    before = usage()
    time.sleep(0.002)
    cost = CallCost.between(before, usage())
    assert cost.blocked is True
    assert cost.elapsed >= 0.002
    assert cost.cpu < cost.elapsed


@linux
def test_a_thread_that_only_computes_has_not_waited() -> None:
    before = usage()
    # CPU only, in one C call that never lets go of the GIL: no sleep, no I/O, no lock, and
    # no other thread of the test process can make this one wait for the GIL
    assert sum(range(3_000_000)) > 0
    cost = CallCost.between(before, usage())
    assert cost.blocked is False
    assert cost.cpu > 0


def test_the_collectors_pauses_are_left_out() -> None:
    COLLECTOR.install()
    garbage = [[i] for i in range(200_000)]  # something for a full collection to walk
    before = usage()
    gc.collect()
    after = usage()
    paused = after.collecting - before.collecting
    assert paused > 0
    cost = CallCost.between(before, after)
    assert cost.elapsed == pytest.approx(after.wall - before.wall - paused)
    assert cost.cpu == pytest.approx(after.cpu - before.cpu - paused)
    del garbage


def test_installing_twice_counts_each_pause_once() -> None:
    COLLECTOR.install()
    COLLECTOR.install()
    assert gc.callbacks.count(COLLECTOR._on_gc) == 1


def test_unknown_switches_leave_blocked_unknown() -> None:
    before, after = Usage(1.0, 0.5, None, 0.0), Usage(2.0, 0.75, None, 0.25)
    assert CallCost.between(before, after) == (0.75, 0.0, None)
