"""HTTP/1.x requests and responses from the two byte streams of a TCP connection.

Only heads are parsed: each direction keeps a bounded buffer until ``\\r\\n\\r\\n``, so a head
split over segments is still read, then passes over the body to the next head: ``Content-Length``
bytes, or a chunked body's framing (chunk-size lines, each bounded, the chunks' data passed over
unread, the trailer fields), which may be split anywhere. ``Transfer-Encoding`` wins over
``Content-Length`` (RFC 9112 §6.3). A direction whose body length is unknown (a response read
until the close, a transfer coding other than chunked) or whose framing is malformed stops
being parsed; its earlier exchanges are kept.

Each request becomes one event, completed with its response when that arrives; a response with
a chunked body is held until the body ends, so that its size (the sum of the chunk sizes) is in
it. A chunked request body's size is added to the request if that is still waiting.

The body bytes a direction will pass over are known (:meth:`HttpParser.skippable`), so a TCP
hole that lies inside them can be passed over too (:meth:`HttpParser.skip`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from secmon.events import Event

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
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions; real ones are a few bytes
CHUNKED = -1  # the body length of a chunked message: it runs to its last chunk

# Where a direction is in a chunked body, and how long the line it waits for may grow there: a
# chunk-size line, the CRLF after a chunk's data, a trailer field.
_NOT_CHUNKED, _CHUNK_SIZE, _CHUNK_DATA_END, _CHUNK_TRAILER = range(4)
_LINE_LIMITS = (0, MAX_CHUNK_LINE, 1, MAX_HEAD)
# A chunk size is hex, 16 digits at most (64 bits); extensions after ";" are not read.
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?", re.DOTALL)


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
    """The body length the head declares: :data:`CHUNKED`, a byte count, or ``None`` when not known."""
    coding = headers.get("transfer-encoding")
    if coding is not None:  # wins over Content-Length; only chunked as the last coding frames the body
        return CHUNKED if coding.rpartition(",")[2].strip().lower() == "chunked" else None
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

    __slots__ = ("_body_event", "_body_size", "_buffers", "_chunk_state", "_dead", "_methods", "_pending", "_skip")

    def __init__(self) -> None:
        self._buffers = (bytearray(), bytearray())
        self._skip = [0, 0]  # body bytes still to pass over unread (a Content-Length body, a chunk's data)
        self._dead = [False, False]
        self._pending: list[Event] = []  # requests without a response yet
        self._methods: list[str] = []
        self._chunk_state = [_NOT_CHUNKED, _NOT_CHUNKED]
        self._body_size = [0, 0]  # the chunk sizes so far of the chunked body being read
        # The event a chunked body's size goes to: the request (still pending), or the response,
        # held back until its body ends so that the size can be in it.
        self._body_event: list[Event | None] = [None, None]

    def skippable(self, way: int) -> int:
        """How many of the next bytes of ``way`` are body bytes that would be passed over unread."""
        return 0 if self._dead[way] else self._skip[way]

    def skip(self, way: int, count: int) -> None:
        """Pass over ``count`` bytes that never arrived (a hole), at most :meth:`skippable` of them."""
        self._skip[way] = max(0, self._skip[way] - count)

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
            if self._chunk_state[way] != _NOT_CHUNKED:
                if not self._chunk(way, buffer, done):
                    break
                continue
            end = buffer.find(b"\r\n\r\n")
            cut = 4
            if end < 0:
                end, cut = buffer.find(b"\n\n"), 2
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._stop(way, done)
                break
            head = bytes(buffer[:end])
            del buffer[: end + cut]
            body = self._request(head) if way == 0 else self._response(head, done)
            if len(self._pending) > MAX_PENDING:  # a client that is never answered: let go of the oldest
                done.append(self._pending.pop(0))
                self._methods.pop(0)
            if body is None:
                self._stop(way, done)
            elif body == CHUNKED:
                self._chunk_state[way] = _CHUNK_SIZE
                self._body_size[way] = 0
            elif body:
                self._pass_over(way, buffer, body)
        return done

    def _pass_over(self, way: int, buffer: bytearray, count: int) -> None:
        """Drop the next ``count`` body bytes: those buffered now, and the rest as they come."""
        if len(buffer) >= count:
            del buffer[:count]
        else:
            self._skip[way] = count - len(buffer)
            buffer.clear()

    def _stop(self, way: int, done: list[Event]) -> None:
        """Stop parsing ``way`` (its framing is lost); a response held for its body's end goes out now."""
        self._dead[way] = True
        self._buffers[way].clear()
        self._skip[way] = 0
        self._end_body(way, done, complete=False)

    def _chunk(self, way: int, buffer: bytearray, done: list[Event]) -> bool:
        """Read one line of chunked framing from ``buffer``; ``False`` when more bytes are needed or it stopped."""
        state = self._chunk_state[way]
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > _LINE_LIMITS[state]:
                self._stop(way, done)
            return False
        line = bytes(buffer[:end]).removesuffix(b"\r")
        del buffer[: end + 1]
        if state == _CHUNK_SIZE:
            size = _CHUNK_SIZE_LINE.fullmatch(line) if len(line) <= MAX_CHUNK_LINE else None
            if size is None:
                self._stop(way, done)
                return False
            count = int(size[1], 16)
            if count:
                self._body_size[way] += count
                self._chunk_state[way] = _CHUNK_DATA_END
                self._pass_over(way, buffer, count)
            else:
                self._chunk_state[way] = _CHUNK_TRAILER
        elif line:
            if state == _CHUNK_DATA_END:  # more data than the chunk size said
                self._stop(way, done)
                return False
            # A trailer field: not read.
        elif state == _CHUNK_DATA_END:
            self._chunk_state[way] = _CHUNK_SIZE
        else:  # the empty line after the trailer fields: the body is over
            self._end_body(way, done, complete=True)
            self._chunk_state[way] = _NOT_CHUNKED
        return True

    def _end_body(self, way: int, done: list[Event], *, complete: bool) -> None:
        """A chunked body is over (or will never be read to its end): record its size where it can go."""
        event = self._body_event[way]
        if event is None:
            return
        self._body_event[way] = None
        if way == 0:  # the request: only while it waits for its response, not once sent on
            if complete and any(pending is event for pending in self._pending):
                event["http"]["request"]["body"] = {"bytes": self._body_size[0]}
        else:  # the response, held back for this
            if complete:
                event["http"]["response"]["body"] = {"bytes": self._body_size[1]}
            done.append(event)

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
        if length is not None and length != CHUNKED:
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
        if length == CHUNKED:
            self._body_event[0] = event
        elif length is None and "transfer-encoding" in headers:
            return None  # a transfer coding that does not frame the body: the server rejects it
        return length or 0

    def _response(self, head: bytes, done: list[Event]) -> int | None:
        line, headers = _head(head)
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return None
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            return 0  # 100 Continue, 103 Early Hints: interim, the request's final response follows
        length = _length(headers)
        method = self._methods.pop(0) if self._methods else ""
        if method == "HEAD" or status < 200 or status in (204, 304):
            body: int | None = 0  # never a body, whatever the head says
        else:
            body = length
        if self._pending:
            event = self._pending.pop(0)
            response: dict[str, Any] = {"status_code": status}
            if length is not None and length != CHUNKED:
                response["body"] = {"bytes": length}
            if "content-type" in headers:
                response["mime_type"] = headers["content-type"]
            event["http"]["response"] = response
            event["event"]["outcome"] = "failure" if status >= 400 else "success"
            if body == CHUNKED:
                self._body_event[1] = event  # sent on when the body ends, with its size
            else:
                done.append(event)
        if status == 101:  # Switching Protocols (WebSocket, h2c): what follows is not HTTP/1 either way
            self._stop(0, done)
            return None
        return body  # None: the body runs to the close, not followed

    def finish(self) -> list[Event]:
        """At the end of the connection: a response whose chunked body never ended, and the requests never answered."""
        ended: list[Event] = []
        self._end_body(1, ended, complete=False)
        ended.extend(self._pending)
        self._pending = []
        return ended
