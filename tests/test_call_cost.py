"""What a call cost its thread (rendezvous.call_cost): the figures the inline policy judges."""

from __future__ import annotations

import gc
import subprocess
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
    # In a process of its own: here, any other thread of the test run that wants the GIL
    # would make this one wait for it, which is a wait (and counted as one).
    code = (
        "from rendezvous.call_cost import CallCost, usage\n"
        "before = usage()\n"
        "x = sum(range(300_000))\n"  # CPU only: no sleep, no I/O, no lock
        "cost = CallCost.between(before, usage())\n"
        "print(cost.blocked, cost.cpu > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


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
