"""ASGI middleware of the API: request body limit, request metrics, and the last-resort 500."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from secmon.log import get_logger
from secmon.serving.problems import BODY_TOO_LARGE, INTERNAL_ERROR, Problem

log = get_logger(__name__)


class _TooLarge(Exception):
    pass


class Guard:
    """Refuses bodies over ``max_body_bytes`` (413, before reading them when Content-Length says so),
    times every request by route template, and answers an unexpected failure with a logged 500."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, registry: CollectorRegistry) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.seconds = Histogram(
            "secmon_api_request_seconds",
            "API requests, by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, f"the body has {int(declared)} bytes; the most is {limit}")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if response_started:
                raise
            status = 413
            await Problem(BODY_TOO_LARGE, f"the body has more than {limit} bytes").response(scope["path"])(
                scope, receive, send
            )
        except Exception:
            log.exception("A request failed.", path=scope.get("path"), method=scope.get("method"))
            if response_started:
                raise  # too late for an answer
            status = 500
            problem = Problem(INTERNAL_ERROR, "an unexpected error; it is logged on the server")
            await problem.response(scope["path"])(scope, receive, send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.seconds.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        await Problem(BODY_TOO_LARGE, detail).response(scope["path"])(scope, receive, send)
        self.seconds.labels("unmatched", scope["method"], "413").observe(0)
