"""Reading a request body: at most ``max_body_bytes`` before and after gunzip, and NDJSON text or a clear refusal.

A body that cannot be read at all (too large, a gzip bomb, bad gzip, not UTF-8, binary, empty)
is refused whole, as a :class:`~secmon.serving.problems.Problem` of one of the kinds here.
"""

from __future__ import annotations

import zlib

from fastapi import Request

from secmon.serving.problems import BODY_TOO_LARGE, Problem, ProblemType

UNSUPPORTED_ENCODING = ProblemType("unsupported-encoding", 415, "The Content-Encoding is not supported")
BAD_GZIP = ProblemType("bad-gzip", 400, "The body is not valid gzip")
NOT_TEXT = ProblemType("not-text", 400, "The body is not UTF-8 text")
EMPTY_BODY = ProblemType("empty-body", 400, "The body holds no events")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, gunzipped when it says so; at most ``limit`` bytes before and after gunzip.

    A gzip bomb is stopped once ``limit`` bytes came out of it, not after inflating it all.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(BODY_TOO_LARGE, f"the body has {declared} bytes; the most is {limit}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise Problem(UNSUPPORTED_ENCODING, f"Content-Encoding {encoding!r}: send gzip or nothing")
    gunzip = _Gunzip(limit) if encoding in ("gzip", "x-gzip") else None
    body = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise Problem(BODY_TOO_LARGE, f"the body has more than {limit} bytes")
        body += gunzip.feed(chunk) if gunzip is not None else chunk
    if gunzip is not None:
        gunzip.finish()
    return bytes(body)


class _Gunzip:
    """Inflates a gzip stream chunk by chunk, never producing more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        try:
            while data:
                # max_length bounds the output: a bomb's rest stays in unconsumed_tail, unread.
                piece = self._inflater.decompress(data, self.limit + 1 - self.produced)
                self.produced += len(piece)
                if self.produced > self.limit:
                    raise Problem(BODY_TOO_LARGE, f"the body inflates to more than {self.limit} bytes")
                out += piece
                data = self._inflater.unconsumed_tail
                if self._inflater.eof:
                    # Another gzip member may follow (concatenated gzip files are one gzip stream).
                    data = self._inflater.unused_data
                    if data:
                        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise Problem(BAD_GZIP, f"Content-Encoding is gzip but the body is not: {exc}") from None
        return bytes(out)

    def finish(self) -> None:
        if not self._inflater.eof:
            raise Problem(BAD_GZIP, "the gzip stream is truncated: the body ended before it did")


def body_text(body: bytes) -> str:
    """``body`` as text, or a problem saying clearly why it is not NDJSON text."""
    if not body.strip():
        raise Problem(EMPTY_BODY, "the body is empty: send one event per line")
    if body.startswith(b"\x1f\x8b"):
        raise Problem(NOT_TEXT, "the body is gzip-compressed: say so with Content-Encoding: gzip")
    nul = body.find(b"\x00")
    if nul >= 0:
        raise Problem(NOT_TEXT, f"the body is binary: a NUL byte on line {_line_at(body, nul)}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            NOT_TEXT,
            f"invalid UTF-8 on line {_line_at(body, exc.start)} (byte {exc.start}: "
            f"{body[exc.start : exc.start + 1]!r}); send UTF-8, as NDJSON requires",
        ) from None


def _line_at(body: bytes, offset: int) -> int:
    return body.count(b"\n", 0, offset) + 1
