"""A real HTTP server on 127.0.0.1 that answers each request with what the test's handler says.

It stands for a central secmon (the handler answers like its ``_bulk``) or for a reverse proxy
in front of the real Elasticsearch node (the handler forwards, or refuses, as nginx's
``client_max_body_size`` or a rate limiter would).
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # path and query
    headers: dict[str, str]
    body: bytes  # as received (gzip if the sender compressed it)

    @property
    def content(self) -> bytes:
        """The body, uncompressed."""
        return gzip.decompress(self.body) if self.headers.get("content-encoding") == "gzip" else self.body

    @property
    def ids(self) -> list[str]:
        """The ``_id`` of each document of a ``_bulk`` body, in order."""
        return [next(iter(orjson.loads(line).values()))["_id"] for line in self.content.splitlines()[::2]]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Receiver:
    """The ASGI app: records every request and answers it with ``handler``."""

    handler: Handler | None = None
    requests: list[tuple[Request, int]] = field(default_factory=list)  # and the status answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope["query_string"].decode()
        target = f"{scope['path']}?{query}" if query else scope["path"]
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        request = Request(scope["method"], target, headers, body)
        assert self.handler is not None, "the test sets a handler before sending"
        response = await self.handler(request)
        self.requests.append((request, response.status))
        start_headers = [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": start_headers})
        await send({"type": "http.response.body", "body": response.body})
