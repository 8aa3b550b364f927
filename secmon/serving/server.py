"""Serving an ASGI application with uvicorn inside the running event loop (ingest and the API).

The socket is bound before the server starts, so a taken port raises here (uvicorn itself would
exit the process), and uvicorn's signal handlers stay off: the service owns SIGINT and SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from secmon.errors import SecmonError
from secmon.log import get_logger

log = get_logger(__name__)


class AsgiServer:
    """One ASGI application on ``address`` (host:port, port 0 for any free one), HTTP or HTTPS."""

    def __init__(
        self,
        app: ASGIApp,
        address: str,
        *,
        name: str,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        graceful_seconds: int = 10,
    ) -> None:
        self.app = app
        self.name = name
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._tls = (tls_cert, tls_key)
        self._graceful = graceful_seconds
        self.address: tuple[str, int] | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base URL clients use (only once started)."""
        if self.address is None:
            raise RuntimeError(f"{self.name} is not started")
        host, port = self.address
        scheme = "https" if self._tls[0] else "http"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        """Bind and start serving; ``self.address`` is then the bound (host, port)."""
        config = uvicorn.Config(
            self.app,
            host=self._host,
            port=self._port,
            log_level="warning",
            log_config=None,  # keep secmon's logging
            lifespan="off",
            timeout_graceful_shutdown=self._graceful,
            ssl_certfile=self._tls[0],
            ssl_keyfile=self._tls[1],
        )
        config.load()  # a bad certificate fails here, not in the server's task
        sock = _listen(self._host, self._port, config.backlog)
        self.address = sock.getsockname()[:2]
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=self.name)
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise SecmonError(f"{self.name}: the HTTP server stopped as it started")
            await asyncio.sleep(0.01)
        log.info("Listening.", component=self.name, url=self.url)

    async def stop(self) -> None:
        """Stop accepting; requests under way are answered first (up to ``graceful_seconds``)."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None


class _Server(uvicorn.Server):
    """uvicorn's server, without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def freeze_startup_heap() -> None:
    """Exclude everything allocated so far (rules, indexes, modules) from garbage collection scans.

    A full collection otherwise walks every long-lived object of a started service and pauses
    the event loop for tens of milliseconds, which is what requests see as their worst latency.
    Call once, when startup is done.
    """
    gc.collect()
    gc.freeze()
