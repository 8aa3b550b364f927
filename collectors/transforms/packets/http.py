"""HTTP/1.x requests and responses from the two byte streams of a TCP connection.

Only heads are parsed: each direction keeps a bounded buffer until ``\\r\\n\\r\\n``, so a head
split over segments is still read, then skips ``Content-Length`` body bytes to the next head.
A direction whose body length is unknown (chunked, or a response read until close) stops
being parsed; its earlier exchanges are kept. Each request becomes one event, completed with
its response when that arrives.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from collectors.event import Event

DATASET = "network.http"

METHODS = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"TRACE ",
    b"PATCH ",
    b"PROPFIND ",
)
MAX_HEAD = 32 * 1024
MAX_PENDING = 64  # requests waiting for their response, per connection


def looks_like_request(payload: bytes) -> bool:
    """Whether a client's first bytes begin an HTTP/1.x request."""
    return payload.startswith(METHODS)


def _head(block: bytes) -> tuple[str, dict[str, str]]:
    text = block.decode("latin-1")
    first, _, rest = text.partition("\n")
    headers: dict[str, str] = {}
    for line in rest.split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            if key not in headers:
                headers[key] = value.strip()
    return first.strip(), headers


def _length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


class HttpParser:
    """The HTTP state of one connection: feed it each direction's in-order bytes."""

    __slots__ = ("_buffers", "_dead", "_methods", "_pending", "_skip")

    def __init__(self) -> None:
        self._buffers = (bytearray(), bytearray())
        self._skip = [0, 0]
        self._dead = [False, False]
        self._pending: list[Event] = []  # requests without a response yet
        self._methods: list[str] = []

    def feed(self, way: int, data: bytes) -> list[Event]:
        """Bytes from the client (``way`` 0) or server (1); returns the exchanges completed."""
        if self._dead[way]:
            return []
        done: list[Event] = []
        skip = self._skip[way]
        if skip:
            if len(data) <= skip:
                self._skip[way] = skip - len(data)
                return done
            data = data[skip:]
            self._skip[way] = 0
        buffer = self._buffers[way]
        buffer += data
        while buffer and not self._dead[way]:
            end = buffer.find(b"\r\n\r\n")
            cut = 4
            if end < 0:
                end, cut = buffer.find(b"\n\n"), 2
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._dead[way] = True
                    buffer.clear()
                break
            head = bytes(buffer[:end])
            del buffer[: end + cut]
            body = self._request(head) if way == 0 else self._response(head, done)
            if len(self._pending) > MAX_PENDING:  # a client that is never answered: let go of the oldest
                done.append(self._pending.pop(0))
                self._methods.pop(0)
            if body is None:
                self._dead[way] = True
                buffer.clear()
            elif body:
                if len(buffer) >= body:
                    del buffer[:body]
                else:
                    self._skip[way] = body - len(buffer)
                    buffer.clear()
        return done

    def _request(self, head: bytes) -> int | None:
        line, headers = _head(head)
        parts = line.split(" ")
        if len(parts) < 2 or not parts[0].isalpha():
            return None
        method, target = parts[0], parts[1]
        version = parts[2][5:] if len(parts) > 2 and parts[2].startswith("HTTP/") else None
        if version == "2.0":
            return None  # the HTTP/2 preface (PRI * HTTP/2.0) after an h2c upgrade: not HTTP/1 any more
        length = _length(headers)
        url: dict[str, Any] = {"original": target}
        try:
            split = urlsplit(target)
            url["path"] = split.path
            if split.query:
                url["query"] = split.query
        except ValueError:
            pass
        host = headers.get("host")
        if host:
            domain, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            url["domain"] = domain or host
            if port.isdigit():
                url["port"] = int(port)
        request: dict[str, Any] = {"method": method}
        if length is not None:
            request["body"] = {"bytes": length}
        if "referer" in headers:
            request["referrer"] = headers["referer"]
        event: Event = {
            "event": {"kind": "event", "category": ["network", "web"], "type": ["protocol"], "dataset": DATASET},
            "network": {"protocol": "http"},
            "http": {"request": request},
            "url": url,
        }
        if version:
            event["http"]["version"] = version
        if "user-agent" in headers:
            event["user_agent"] = {"original": headers["user-agent"]}
        self._pending.append(event)
        self._methods.append(method)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return None
        return length or 0

    def _response(self, head: bytes, done: list[Event]) -> int | None:
        line, headers = _head(head)
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return None
        status = int(parts[1])
        length = _length(headers)
        method = self._methods.pop(0) if self._methods else ""
        if self._pending:
            event = self._pending.pop(0)
            response: dict[str, Any] = {"status_code": status}
            if length is not None:
                response["body"] = {"bytes": length}
            if "content-type" in headers:
                response["mime_type"] = headers["content-type"]
            event["http"]["response"] = response
            event["event"]["outcome"] = "failure" if status >= 400 else "success"
            done.append(event)
        if method == "HEAD" or status < 200 or status in (204, 304):
            return 0
        if headers.get("transfer-encoding", "").lower() == "chunked" or length is None:
            return None  # body runs to a chunk end or to the close: not followed
        return length

    def finish(self) -> list[Event]:
        """The requests that never got a response (at the end of the connection)."""
        pending, self._pending = self._pending, []
        return pending
