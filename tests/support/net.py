"""Ports on 127.0.0.1 for services a test starts in a subprocess."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (for a subprocess that must be told its port in advance)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connects(port: int) -> bool:
    """Whether something accepts TCP connections on ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
