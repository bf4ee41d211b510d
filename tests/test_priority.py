"""The event loop's longer time slice: taken by the calling thread only, never passed on."""

from __future__ import annotations

import os

import pytest

from rendezvous.priority import lower_priority, request_slice, time_slice
from support import LINUX, custom_slices, in_new_thread

needs_custom_slices = pytest.mark.skipif(
    not custom_slices(),
    reason="time slices a thread asks for need Linux 6.12 or later",
)


@needs_custom_slices
def test_the_calling_thread_gets_the_slice_it_asked_for() -> None:
    def ask() -> tuple[float | None, bool, float | None]:
        return time_slice(), request_slice(0.007), time_slice()

    default, took, after = in_new_thread(ask)
    assert took
    assert after == pytest.approx(0.007)
    assert default != pytest.approx(0.007)


@needs_custom_slices
def test_threads_started_later_get_the_default_slice() -> None:
    def ask() -> tuple[float | None, float | None, float | None]:
        default = time_slice()
        assert request_slice(0.009)
        return default, time_slice(), in_new_thread(time_slice)

    default, mine, theirs = in_new_thread(ask)
    assert mine == pytest.approx(0.009)
    assert theirs == default


@needs_custom_slices
def test_asking_for_a_slice_keeps_the_thread_s_niceness() -> None:
    def ask() -> tuple[int, int]:
        os.setpriority(os.PRIO_PROCESS, 0, 3)  # this thread only, on Linux
        before = os.getpriority(os.PRIO_PROCESS, 0)
        assert request_slice(0.006)
        return before, os.getpriority(os.PRIO_PROCESS, 0)

    before, after = in_new_thread(ask)
    assert before == after == 3


@pytest.mark.skipif(not LINUX, reason="SCHED_IDLE is Linux only")
def test_an_idle_priority_thread_is_left_as_it_is() -> None:
    def ask() -> tuple[str, float | None, bool, float | None, int]:
        got = lower_priority("idle")
        before = time_slice()
        took = request_slice(0.02)
        return got, before, took, time_slice(), os.sched_getscheduler(0)

    got, before, took, after, policy = in_new_thread(ask)
    if got != "idle":
        pytest.skip("this container forbids SCHED_IDLE")
    assert not took
    assert after == before
    assert policy == os.SCHED_IDLE
