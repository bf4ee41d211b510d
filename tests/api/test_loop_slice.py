"""The app's lifespan gives the event loop's thread a longer time slice (Linux 6.12+)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from rendezvous.api.app import LOOP_SLICE_S, create_app
from rendezvous.config import Deployment
from rendezvous.priority import time_slice
from rendezvous.service import Rendezvous
from support import custom_slices, in_new_thread

pytestmark = pytest.mark.skipif(
    not custom_slices(),
    reason="time slices a thread asks for need Linux 6.12 or later",
)


def test_the_event_loop_thread_runs_with_the_longer_slice_while_serving(
    make_deployments: Callable[[Path], list[Deployment]], tmp_path: Path
) -> None:
    async def serve() -> tuple[float | None, float | None, float | None]:
        app = create_app(Rendezvous(make_deployments(tmp_path)))
        before = time_slice()
        async with app.router.lifespan_context(app):
            serving = time_slice()
            # a thread the loop starts (here asyncio's default pool) keeps the default
            started = await asyncio.to_thread(time_slice)
        return before, serving, started

    before, serving, started = in_new_thread(lambda: asyncio.run(serve()))
    assert serving == pytest.approx(LOOP_SLICE_S)
    assert before != pytest.approx(LOOP_SLICE_S)
    assert started == before
