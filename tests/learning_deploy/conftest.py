"""Fixtures for deployments that learn: a clock that moves only when told."""

from __future__ import annotations

import pytest
from deploy_learning_helpers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
