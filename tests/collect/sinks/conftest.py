"""Fixtures of the sink tests: a real HTTP server on 127.0.0.1 (see :mod:`tests.collect.sinks.receiver`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from secmon.serving import AsgiServer
from tests.collect.sinks.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A :class:`Receiver` serving on 127.0.0.1, and its base URL."""
    app = Receiver()
    server = AsgiServer(app, "127.0.0.1:0", name="stand-in receiver")
    await server.start()
    try:
        yield app, server.url
    finally:
        await server.stop()
