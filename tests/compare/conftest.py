"""Fixtures for the comparison tests: a started in-memory archive, traffic written into it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compare_data import Traffic

from rendezvous.archive import MemoryArchive


@pytest.fixture
def archive() -> Iterator[MemoryArchive]:
    archive = MemoryArchive()
    archive.start()
    yield archive
    archive.stop()


@pytest.fixture
def traffic(archive: MemoryArchive) -> Traffic:
    return Traffic(archive)
