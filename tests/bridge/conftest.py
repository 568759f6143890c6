"""Fixtures shared by the bridge tests; the classes behind them are in support.py."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from jasco_bridge.engines import OpenedRenderer, open_preview
from jasco_bridge.jobs import JobQueue
from tests.bridge.support import WAIT_SECONDS, Events, OscPeer


@pytest.fixture(scope="session")
def preview() -> OpenedRenderer:
    """The real PreviewEngine and the bundled chord table."""
    return open_preview()


@pytest.fixture
def peer() -> Iterator[OscPeer]:
    """A UDP OSC client on its own port, closed after the test."""
    client = OscPeer()
    yield client
    client.close()


@pytest.fixture
def running(preview, tmp_path) -> Iterator[tuple[JobQueue, Events]]:
    """A started queue on the real PreviewEngine writing under tmp_path, shut down after the
    test, and the events it reported."""
    events = Events()
    queue = JobQueue(preview, tmp_path, on_event=events, rng=random.Random(3))
    queue.start()
    yield queue, events
    queue.shutdown(timeout=WAIT_SECONDS)
