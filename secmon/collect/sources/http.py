"""The HTTP source: NDJSON on ``/ingest``, and enough of Elasticsearch's API for log shippers.

Endpoints (all but ``/healthz`` need an API key of role agency or admin):

* ``POST /ingest`` and ``POST /ingest/{format}``: NDJSON, one event per line: a JSON object for
  the JSON formats, a raw log line for the others. Answer: ``{"accepted": n, "rejected": [...]}``,
  200 when every line was taken, 207 when some were, 400 when none was.
* ``POST|PUT /_bulk`` and ``/{index}/_bulk``: Elasticsearch's bulk API, answered in its shape, so
  Filebeat, Winlogbeat, Vector and Fluent Bit ship to secmon with their Elasticsearch output.
  A collector-only secmon (``forward:``) sends its normalized events there with ``?format=json``.
* The set-up calls those shippers make first, answered as a healthy Elasticsearch 8.19 would.
* ``GET /healthz``.

A request is answered once its events are durable in the disk buffer, never before: a sender
that got no answer sends again. A line or bulk item secmon cannot take (not JSON, or naming an
agency the key does not have) is refused alone, reported in the answer and dead-lettered; the
rest of the request is stored. A body that cannot be read at all (too large, a gzip bomb, bad
gzip, not UTF-8, binary, empty) is refused whole with problem details (RFC 9457).

What the shippers call, as read in their sources:

* Beats (libbeat's Elasticsearch output): ``GET /`` for the version (``build_flavor``
  "serverless" would switch ILM off); ``GET /_license?human=false``, which the default
  distribution of Beats requires to be an active license; ``GET /_cat/templates/<name>`` then
  ``PUT /_index_template/<name>``; ``GET`` then ``PUT /_ilm/policy/<name>``; Filebeat modules
  ``GET`` then ``PUT /_ingest/pipeline/<id>``; Beats 7 ``HEAD|PUT /_template/<name>`` and
  ``GET /_xpack``. Then ``POST /_bulk?filter_path=...``, gzip-compressed by default since 8.x.
* Vector's elasticsearch sink: ``GET /`` (``api_version: auto``), ``GET /_cluster/health``
  (health check), ``POST /_bulk?timeout=...``; it looks for ``"errors":true`` in the answer.
* Fluent Bit's es output: ``POST /_bulk`` only; it reads ``errors`` and the items' ``status``.
* Elasticsearch's own clients refuse an answer without ``X-Elastic-Product: Elasticsearch``.

Templates, policies and pipelines are acknowledged and reported as present, never applied:
secmon normalizes events itself. ``pipeline`` and ``filter_path`` parameters are ignored.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import secrets
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from secmon import __version__
from secmon.auth import ApiKey, KeyStore, KeyStoreUnavailable, Role, presented_secret
from secmon.auth.limits import KeyRateLimiter, retry_after
from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.settings import HttpSourceSettings
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.collect.transforms.normalize import FORMATS
from secmon.collect.transforms.parse_json import load_json_object
from secmon.errors import ConfigError, IngestError
from secmon.events import Event, Record
from secmon.log import get_logger
from secmon.serving import AsgiServer

log = get_logger(__name__)

ES_VERSION = "8.19.21"
# Formats whose lines must each be a JSON object; the others take any line of text.
JSON_FORMATS = frozenset({"json", "beats", "evtx"})
# The format of documents arriving through _bulk: JSON objects shaped by Beats, Vector or Fluent Bit.
BULK_FORMAT = "beats"
_INGEST_ROLES = frozenset({Role.AGENCY, Role.ADMIN})
_BULK_OPS = frozenset({"index", "create", "delete", "update"})
_SHARDS = {"total": 1, "successful": 1, "failed": 0}
# What Elasticsearch itself answers with these statuses; shippers retry a 429 after backing off.
_ES_ERROR_TYPES = {401: "security_exception", 403: "security_exception", 429: "es_rejected_execution_exception"}


# -- problems --------------------------------------------------------------------------------


class ProblemType(Enum):
    """Why a request was refused as a whole: its HTTP status and the problem's title."""

    UNAUTHORIZED = (401, "A valid API key is needed")
    FORBIDDEN = (403, "This API key may not send events")
    NOT_FOUND = (404, "No such endpoint")
    UNKNOWN_FORMAT = (404, "No such format")
    METHOD_NOT_ALLOWED = (405, "Method not allowed here")
    BODY_TOO_LARGE = (413, "The request body is too large")
    TOO_MANY_EVENTS = (429, "This API key sends more events than its rate limit")
    UNSUPPORTED_ENCODING = (415, "The Content-Encoding is not supported")
    BAD_GZIP = (400, "The body is not valid gzip")
    NOT_TEXT = (400, "The body is not UTF-8 text")
    EMPTY_BODY = (400, "The body holds no events")
    INVALID_REQUEST = (400, "The request is not valid")
    KEYS_UNAVAILABLE = (503, "API keys cannot be checked right now")
    INTERNAL_ERROR = (500, "secmon failed on this request")

    @property
    def status(self) -> int:
        return int(self.value[0])

    @property
    def title(self) -> str:
        return str(self.value[1])

    @property
    def uri(self) -> str:
        return f"urn:secmon:problem:{self.name.lower().replace('_', '-')}"


class Problem(IngestError):
    """A request refused as a whole; answered as problem details."""

    def __init__(self, kind: ProblemType, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self, *, elasticsearch: bool) -> Response:
        """The answer; to Elasticsearch clients, as JSON they parse, with Elasticsearch's ``error`` too."""
        body: dict[str, Any] = {
            "type": self.kind.uri,
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
        }
        media_type = "application/problem+json"
        if elasticsearch:
            # Their clients cannot parse application/problem+json, and they look for "error".
            error_type = _ES_ERROR_TYPES.get(self.kind.status, "illegal_argument_exception")
            error = {"type": error_type, "reason": self.detail}
            body["error"] = {"root_cause": [error], **error}
            media_type = "application/json"
        return Response(orjson.dumps(body), self.kind.status, self.headers, media_type)


# -- request bodies --------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The body, gunzipped when it says so; at most ``limit`` bytes before and after gunzip.

    A gzip bomb is stopped once ``limit`` bytes came out of it, not after inflating it all.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(ProblemType.BODY_TOO_LARGE, f"the body has {declared} bytes; the most is {limit}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise Problem(ProblemType.UNSUPPORTED_ENCODING, f"Content-Encoding {encoding!r}: send gzip or nothing")
    gunzip = _Gunzip(limit) if encoding in ("gzip", "x-gzip") else None
    body = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise Problem(ProblemType.BODY_TOO_LARGE, f"the body has more than {limit} bytes")
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
                    raise Problem(ProblemType.BODY_TOO_LARGE, f"the body inflates to more than {self.limit} bytes")
                out += piece
                data = self._inflater.unconsumed_tail
                if self._inflater.eof:
                    # Another gzip member may follow (concatenated gzip files are one gzip stream).
                    data = self._inflater.unused_data
                    if data:
                        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise Problem(ProblemType.BAD_GZIP, f"Content-Encoding is gzip but the body is not: {exc}") from None
        return bytes(out)

    def finish(self) -> None:
        if not self._inflater.eof:
            raise Problem(ProblemType.BAD_GZIP, "the gzip stream is truncated: the body ended before it did")


def body_text(body: bytes) -> str:
    """``body`` as text, or a problem saying clearly why it is not NDJSON text."""
    if not body.strip():
        raise Problem(ProblemType.EMPTY_BODY, "the body is empty: send one event per line")
    if body.startswith(b"\x1f\x8b"):
        raise Problem(ProblemType.NOT_TEXT, "the body is gzip-compressed: say so with Content-Encoding: gzip")
    nul = body.find(b"\x00")
    if nul >= 0:
        raise Problem(ProblemType.NOT_TEXT, f"the body is binary: a NUL byte on line {_line_at(body, nul)}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            ProblemType.NOT_TEXT,
            f"invalid UTF-8 on line {_line_at(body, exc.start)} (byte {exc.start}: "
            f"{body[exc.start : exc.start + 1]!r}); send UTF-8, as NDJSON requires",
        ) from None


def _line_at(body: bytes, offset: int) -> int:
    return body.count(b"\n", 0, offset) + 1


# -- authentication --------------------------------------------------------------------------


# -- the work behind the routes ----------------------------------------------------------------


class RejectedLine(BaseModel):
    """A line of the body that was not taken, and why."""

    line: int = Field(description="Its number in the body, from 1.")
    reason: str


class IngestResult(BaseModel):
    """What became of the lines of one request."""

    accepted: int = Field(description="Lines stored (durable in secmon's buffer when this answer is sent).")
    rejected: list[RejectedLine] = Field(description="Lines refused; each is also kept in the dead-letter stream.")


class _Refused(Exception):
    """One line or bulk item refused: (Elasticsearch error type, status, reason)."""

    def __init__(self, reason: str, error_type: str = "mapper_parsing_exception", status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.status = status


@dataclass(slots=True)
class _BulkItem:
    """One action of a bulk body with its document line, as found."""

    op: str
    index: str
    id: str | None
    line: int  # of the action
    source: str | None
    raw: str  # the action and source lines, for the dead-letter stream
    refused: _Refused | None = None


class Ingest:
    """Turns request bodies into records for the pipeline, on behalf of an API key."""

    def __init__(self, pipeline: Pipeline, keys: KeyStore, settings: HttpSourceSettings, component: str) -> None:
        self.pipeline = pipeline
        self.keys = keys
        self.settings = settings
        self.component = component
        self.formats = known_formats()
        self.limiter = KeyRateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        node = uuid.uuid5(uuid.NAMESPACE_URL, f"secmon:{component}").bytes
        self.node_id = base64.urlsafe_b64encode(node).decode().rstrip("=")  # shaped like Elasticsearch's
        self._seq_no = itertools.count()

    async def lines(self, body: bytes, fmt: str, key: ApiKey, peer: str | None) -> IngestResult:
        """Submit each line of an NDJSON body; dead-letter and report the lines refused."""
        if fmt not in self.formats:
            raise Problem(ProblemType.UNKNOWN_FORMAT, f"no format {fmt!r}; known: {', '.join(sorted(self.formats))}")
        text = body_text(body)
        origin = self._origin(peer)
        received = time.time()
        batches: dict[Agency | None, list[Record]] = {}
        rejected: list[RejectedLine] = []
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.removesuffix("\r")
            if not line.strip():
                continue
            try:
                agency = self.agency(key, _line_claim(line, fmt))
            except _Refused as refused:
                rejected.append(RejectedLine(line=number, reason=refused.reason))
                await self.pipeline.reject(line, refused.reason, self._context(fmt, key), where=f"line {number}")
                continue
            batches.setdefault(agency, []).append(Record(line, origin, received))
        await self._submit(batches, fmt)
        return IngestResult(accepted=sum(len(records) for records in batches.values()), rejected=rejected)

    async def bulk(
        self, body: bytes, path_index: str | None, key: ApiKey, peer: str | None, fmt: str = BULK_FORMAT
    ) -> dict[str, Any]:
        """Submit the documents of a ``_bulk`` body; the answer is Elasticsearch's, item by item.

        ``fmt`` is how the documents are parsed: shippers' documents by default, ``json`` for
        events another secmon normalized already and forwards (kept as they are).
        """
        if fmt not in JSON_FORMATS:
            known = ", ".join(sorted(JSON_FORMATS))
            raise Problem(ProblemType.UNKNOWN_FORMAT, f"no bulk format {fmt!r}; known: {known}")
        started = time.monotonic()
        text = body_text(body)
        origin = self._origin(peer)
        received = time.time()
        batches: dict[Agency | None, list[Record]] = {}
        items: list[dict[str, Any]] = []
        for item in _bulk_items(text.split("\n"), path_index or ""):
            try:
                if item.refused is not None:
                    raise item.refused
                document = _json_object(item.source or "")
                agency = self.agency(key, _claimed_agency(document))
            except _Refused as refused:
                error = {"type": refused.error_type, "reason": refused.reason}
                items.append(
                    {item.op: {"_index": item.index, "_id": item.id, "status": refused.status, "error": error}}
                )
                if item.op in ("index", "create"):
                    await self.pipeline.reject(
                        item.raw, refused.reason, self._context(fmt, key), where=f"line {item.line}"
                    )
                continue
            doc_id = item.id or _new_id()
            # The key makes the stored id deterministic: the same document sent again is stored once.
            record_key = f"{agency.id if agency else ''}/{item.index}/{doc_id}"
            message = orjson.dumps(document).decode()
            batches.setdefault(agency, []).append(Record(message, origin, received, key=record_key))
            items.append({item.op: self._created(item.index, doc_id)})
        if not items:
            raise Problem(ProblemType.EMPTY_BODY, "the bulk body holds no action")
        await self._submit(batches, fmt)
        took = int((time.monotonic() - started) * 1000)
        errors = any("error" in next(iter(entry.values())) for entry in items)
        return {"took": took, "errors": errors, "items": items}

    def agency(self, key: ApiKey, claimed: str | None) -> Agency | None:
        """The agency an event is stored for: the one it names if the key covers it, else the key's first."""
        if key.role is Role.AGENCY:
            if claimed is not None and not key.covers(claimed):
                raise _Refused(
                    f"organization.id {claimed!r} is not an agency of this API key", "security_exception", 403
                )
            chosen: str | None = claimed or key.agencies[0]
        else:
            chosen = claimed or self.settings.agency
        if chosen is None:
            return None
        return Agency(chosen, self.settings.agency_name if chosen == self.settings.agency else None)

    def cluster_info(self) -> dict[str, Any]:
        """``GET /`` of an Elasticsearch 8.19 node."""
        return {
            "name": f"secmon-{self.component}",
            "cluster_name": "secmon",
            "cluster_uuid": self.node_id,
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "secmon",
                "build_hash": "secmon",
                "build_date": "2025-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "9.12.2",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    async def _submit(self, batches: dict[Agency | None, list[Record]], fmt: str) -> None:
        for agency, records in batches.items():
            await self.pipeline.submit(records, SourceContext(self.component, fmt, agency, self.settings.dataset))

    def _context(self, fmt: str, key: ApiKey) -> SourceContext:
        """Where a refused line is dead-lettered: under the key's (first) agency."""
        return SourceContext(self.component, fmt, self.agency(key, None), self.settings.dataset)

    def _created(self, index: str, doc_id: str) -> dict[str, Any]:
        return {
            "_index": index,
            "_id": doc_id,
            "_version": 1,
            "result": "created",
            "_shards": _SHARDS,
            "_seq_no": next(self._seq_no),
            "_primary_term": 1,
            "status": 201,
        }

    @staticmethod
    def _origin(peer: str | None) -> Event:
        origin: Event = {"observer": {"type": "http"}}
        if peer:
            origin["log"] = {"source": {"address": peer}}
        return origin


def known_formats() -> frozenset[str]:
    """What ``format`` (and ``/ingest/{format}``) may name."""
    return frozenset({"auto", *FORMATS})


def _json_object(line: str) -> dict[str, Any]:
    value = load_json_object(line)
    if isinstance(value, str):
        raise _Refused(value)
    return value


def _line_claim(line: str, fmt: str) -> str | None:
    """The agency an NDJSON line names; raises :class:`_Refused` for a line its JSON format cannot take."""
    if fmt in JSON_FORMATS:
        return _claimed_agency(_json_object(line))
    if fmt == "auto" and line.startswith("{"):
        # "auto" parses it as JSON too: what it names matters, but a broken one is kept as text.
        with contextlib.suppress(_Refused):
            return _claimed_agency(_json_object(line))
    return None


def _claimed_agency(event: dict[str, Any]) -> str | None:
    """The agency an event names in ``organization.id`` (nested or dotted), if any."""
    organization = event.get("organization")
    value = organization.get("id") if isinstance(organization, dict) else event.get("organization.id")
    return None if value is None or value == "" else str(value)


def _bulk_items(lines: list[str], default_index: str) -> Iterator[_BulkItem]:
    """The actions of a bulk body, each with its document line; malformed ones carry their refusal."""
    position = 0
    while position < len(lines):
        action_line = lines[position].removesuffix("\r")
        position += 1
        number = position
        if not action_line.strip():
            continue
        action = _action(action_line)
        if action is None or action[0] not in _BULK_OPS:
            if action is None:
                reason = f'Malformed action/metadata line [{number}], expected an object like {{"create": {{}}}}'
            else:
                reason = (
                    f"Malformed action/metadata line [{number}], expected field [create], [delete], [index] "
                    f"or [update] but found [{action[0]}]"
                )
            # Its document, if it has one, is the next line, unless that is an action itself.
            source = None
            if position < len(lines) and lines[position].strip() and _action(lines[position]) is None:
                source = lines[position].removesuffix("\r")
                position += 1
            raw = action_line if source is None else f"{action_line}\n{source}"
            yield _BulkItem("index", default_index, None, number, source, raw, _Refused(reason, "parse_exception"))
            continue
        op, meta = action
        # As Elasticsearch, only a simple value names an index or an id (and str() of a list
        # nested a thousand deep would overflow the stack).
        malformed = next((name for name in ("_index", "_id") if isinstance(meta.get(name), dict | list)), None)
        if malformed is not None:
            meta = {}
        index = str(meta.get("_index") or default_index)
        doc_id = None if meta.get("_id") is None else str(meta["_id"])
        if op == "delete":
            refusal = _Refused(
                "delete is not supported by secmon: events are never deleted", "illegal_argument_exception"
            )
            yield _BulkItem(op, index, doc_id, number, None, action_line, refusal)
            continue
        source = lines[position].removesuffix("\r") if position < len(lines) else None
        position += 1
        raw = action_line if source is None else f"{action_line}\n{source}"
        if malformed is not None:
            reason = f"Malformed action/metadata line [{number}], expected a simple value for field [{malformed}]"
            yield _BulkItem(op, index, doc_id, number, source, raw, _Refused(reason, "parse_exception"))
        elif op == "update":
            refusal = _Refused(
                "update is not supported by secmon: events are never changed", "illegal_argument_exception"
            )
            yield _BulkItem(op, index, doc_id, number, source, raw, refusal)
        elif source is None or not source.strip():
            yield _BulkItem(op, index, doc_id, number, source, raw, _Refused("the document line is missing or empty"))
        else:
            yield _BulkItem(op, index, doc_id, number, source, raw)


def _action(line: str) -> tuple[str, dict[str, Any]] | None:
    """``(op, metadata)`` of a bulk action line, or None if the line is not shaped like one."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and len(value) == 1:
        op, meta = next(iter(value.items()))
        if isinstance(meta, dict):
            return op, meta
    return None


def _new_id() -> str:
    """An id like Elasticsearch's own: 20 URL-safe characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(15)).decode()


# -- dependencies ----------------------------------------------------------------------------


def get_ingest(request: Request) -> Ingest:
    return cast(Ingest, request.app.state.ingest)


IngestDep = Annotated[Ingest, Depends(get_ingest)]


async def ingest_key(request: Request, ingest: IngestDep) -> ApiKey:
    """The verified API key of the request, which must be allowed to send events."""
    challenge = {"WWW-Authenticate": "ApiKey"}
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Problem(ProblemType.UNAUTHORIZED, "send an API key: Authorization: ApiKey <key>", challenge)
    secret = presented_secret(authorization)
    try:
        key = await ingest.keys.verify(secret) if secret else None
    except KeyStoreUnavailable as exc:
        raise Problem(ProblemType.KEYS_UNAVAILABLE, str(exc), {"Retry-After": "10"}) from None
    if key is None:
        raise Problem(ProblemType.UNAUTHORIZED, "the API key is unknown, malformed or revoked", challenge)
    if key.role not in _INGEST_ROLES or (key.role is Role.AGENCY and not key.agencies):
        raise Problem(ProblemType.FORBIDDEN, f"a key of role {key.role.value} may not send events; use an agency key")
    return key


IngestKey = Annotated[ApiKey, Depends(ingest_key)]


async def request_body(request: Request, ingest: IngestDep, key: IngestKey) -> bytes:
    """The request body, within ``max_body_bytes`` before and after gunzip, and the key's rate limit."""
    body = await read_body(request, ingest.settings.max_body_bytes)
    if ingest.limiter is not None:
        lines = body.count(b"\n") + (not body.endswith(b"\n"))
        events = lines // 2 if request.url.path.endswith("/_bulk") else lines  # bulk: an action line per document
        wait = ingest.limiter.take(key.id, max(1, events))
        if wait:
            raise Problem(
                ProblemType.TOO_MANY_EVENTS,
                f"key {key.name} may send {ingest.limiter.rate:g} events/s; send again in {wait:.1f} s",
                {"Retry-After": retry_after(wait)},
            )
    return body


RequestBody = Annotated[bytes, Depends(request_body)]


def _peer(request: Request) -> str | None:
    return f"{request.client.host}:{request.client.port}" if request.client else None


# -- routes ----------------------------------------------------------------------------------
# The key is a dependency of the routers: it is checked before anything else, the body included.

ingest_router = APIRouter(prefix="/ingest", tags=["ingest"], dependencies=[Depends(ingest_key)])


@ingest_router.post("", response_model=IngestResult, responses={207: {"model": IngestResult}})
async def ingest_default(
    ingest: IngestDep, key: IngestKey, body: RequestBody, request: Request, response: Response
) -> IngestResult:
    """Store NDJSON events, one per line, parsed in the source's configured format."""
    return _status(await ingest.lines(body, ingest.settings.format, key, _peer(request)), response)


@ingest_router.post("/{fmt}", response_model=IngestResult, responses={207: {"model": IngestResult}})
async def ingest_format(
    fmt: str, *, ingest: IngestDep, key: IngestKey, body: RequestBody, request: Request, response: Response
) -> IngestResult:
    """Store NDJSON events, one per line, parsed in the format the path names."""
    return _status(await ingest.lines(body, fmt, key, _peer(request)), response)


def _status(result: IngestResult, response: Response) -> IngestResult:
    if result.rejected:
        response.status_code = 207 if result.accepted else 400
    return result


elasticsearch_router = APIRouter(tags=["elasticsearch"], dependencies=[Depends(ingest_key)])


# Not an Elasticsearch parameter: a secmon agency forwarding its normalized events sends format=json.
BulkFormat = Annotated[
    str, Query(alias="format", description="How to parse the documents: beats (shippers), or json (ECS events).")
]


@elasticsearch_router.api_route("/_bulk", methods=["POST", "PUT"])
async def bulk(
    ingest: IngestDep, key: IngestKey, body: RequestBody, request: Request, fmt: BulkFormat = BULK_FORMAT
) -> Response:
    """Store the documents of an Elasticsearch bulk request, answered as Elasticsearch does."""
    return _json(await ingest.bulk(body, None, key, _peer(request), fmt))


@elasticsearch_router.api_route("/{index}/_bulk", methods=["POST", "PUT"])
async def bulk_index(
    index: str, *, ingest: IngestDep, key: IngestKey, body: RequestBody, request: Request, fmt: BulkFormat = BULK_FORMAT
) -> Response:
    """Store the documents of an Elasticsearch bulk request to ``index``, answered as Elasticsearch does."""
    return _json(await ingest.bulk(body, index, key, _peer(request), fmt))


@elasticsearch_router.api_route("/", methods=["GET", "HEAD"])
async def cluster_info(ingest: IngestDep) -> dict[str, Any]:
    """Introduce secmon as an Elasticsearch 8.19 node, as shippers check before sending."""
    return ingest.cluster_info()


@elasticsearch_router.get("/_license")
async def license_info() -> dict[str, Any]:
    """An active basic license, which Beats require."""
    return {"license": _LICENSE}


@elasticsearch_router.get("/_xpack")
async def xpack_info() -> dict[str, Any]:
    """The features Beats 7 look for before loading a lifecycle policy."""
    features = {"ilm": {"available": True, "enabled": True}, "security": {"available": True, "enabled": True}}
    return {"build": {"hash": "secmon", "date": "2025-01-01T00:00:00.000Z"}, "license": _LICENSE, "features": features}


@elasticsearch_router.get("/_cluster/health")
async def cluster_health() -> dict[str, Any]:
    """A green cluster: Vector's health check."""
    return {"cluster_name": "secmon", "status": "green", "timed_out": False, "number_of_nodes": 1}


@elasticsearch_router.get("/_nodes")
@elasticsearch_router.get("/_nodes/{selector:path}")
async def nodes_info(ingest: IngestDep, request: Request) -> dict[str, Any]:
    """This one node, reachable where the request came in, with the largest body it takes."""
    node = {
        "name": f"secmon-{ingest.component}",
        "version": ES_VERSION,
        "build_flavor": "default",
        "roles": ["data", "ingest", "master"],
        "http": {
            "publish_address": request.url.netloc,
            "max_content_length_in_bytes": ingest.settings.max_body_bytes,
        },
        "ingest": {"processors": []},
    }
    counts = {"total": 1, "successful": 1, "failed": 0}
    return {"_nodes": counts, "cluster_name": "secmon", "nodes": {ingest.node_id: node}}


@elasticsearch_router.get("/_cat/templates/{name}")
async def cat_templates(name: str, request: Request) -> Response:
    """Report the template as present, so Beats do not send it."""
    if request.query_params.get("format") == "json":
        return _json([{"name": name, "index_patterns": f"[{name}*]", "order": "0", "composed_of": "[]"}])
    return Response(f"{name} [{name}*] 0  []\n", media_type="text/plain")


@elasticsearch_router.api_route("/_index_template/{name}", methods=["GET", "HEAD"])
async def get_index_template(name: str) -> dict[str, Any]:
    """Report the index template as present; secmon keeps its own mappings."""
    template = {"index_patterns": [f"{name}*"], "composed_of": [], "data_stream": {}}
    return {"index_templates": [{"name": name, "index_template": template}]}


@elasticsearch_router.api_route("/_template/{name}", methods=["GET", "HEAD"])
async def get_legacy_template(name: str) -> dict[str, Any]:
    """Report the legacy template as present (Beats 7)."""
    return {name: {"order": 0, "index_patterns": [f"{name}*"], "settings": {}, "mappings": {}, "aliases": {}}}


@elasticsearch_router.get("/_ilm/policy/{name}")
async def get_ilm_policy(name: str) -> dict[str, Any]:
    """Report the lifecycle policy as present; secmon applies its own retention."""
    return {name: {"version": 1, "modified_date": "2025-01-01T00:00:00.000Z", "policy": {"phases": {}}}}


@elasticsearch_router.get("/_ingest/pipeline/{name}")
async def get_ingest_pipeline(name: str) -> dict[str, Any]:
    """Report the ingest pipeline as present; secmon normalizes events itself."""
    return {name: {"description": "accepted by secmon, which runs no ingest pipelines", "processors": []}}


@elasticsearch_router.put("/_index_template/{name}")
@elasticsearch_router.put("/_template/{name}")
@elasticsearch_router.put("/_ilm/policy/{name}")
@elasticsearch_router.put("/_ingest/pipeline/{name}")
async def put_setup(name: str, body: RequestBody) -> dict[str, Any]:
    """Acknowledge a template, policy or pipeline; secmon does not apply it."""
    return {"acknowledged": True}


_LICENSE = {
    "status": "active",
    "uid": "00000000-0000-4000-8000-00000000ec30",
    "type": "basic",
    "mode": "basic",
    "issue_date": "2025-01-01T00:00:00.000Z",
    "issue_date_in_millis": 1735689600000,
    "max_nodes": 1000,
    "issued_to": "secmon",
    "issuer": "secmon",
    "start_date_in_millis": -1,
}

health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the source runs; no API key needed."""
    return {"status": "ok"}


def _json(content: Any, status: int = 200) -> Response:
    # Compact, as Vector and Fluent Bit look for '"errors":true' in the raw answer.
    return Response(orjson.dumps(content), status, media_type="application/json")


# -- the application -------------------------------------------------------------------------


def create_ingest_app(pipeline: Pipeline, keys: KeyStore, settings: HttpSourceSettings, component: str) -> FastAPI:
    """The ingest application of source ``component``."""
    app = FastAPI(
        title="secmon ingest",
        version=__version__,
        description="Send events to secmon: NDJSON, or Elasticsearch's bulk API from Beats, Vector or Fluent Bit.",
    )
    app.state.ingest = Ingest(pipeline, keys, settings, component)
    app.include_router(health_router)
    app.include_router(ingest_router)
    app.include_router(elasticsearch_router)

    def problem_response(request: Request, problem: Problem) -> Response:
        pipeline.telemetry.errors.labels(component, "request").inc()
        return problem.response(elasticsearch=not request.url.path.startswith(("/ingest", "/healthz")))

    async def on_problem(request: Request, exc: Exception) -> Response:
        return problem_response(request, cast(Problem, exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = cast(StarletteHTTPException, exc).status_code
        kind = ProblemType.METHOD_NOT_ALLOWED if status == 405 else ProblemType.NOT_FOUND
        return problem_response(request, Problem(kind, f"{request.method} {request.url.path}: {kind.title.lower()}"))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        errors = cast(RequestValidationError, exc).errors()
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(request, Problem(ProblemType.INVALID_REQUEST, detail))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_middleware(ElasticsearchProductHeader, component=component, pipeline=pipeline)
    return app


class ElasticsearchProductHeader:
    """Adds ``X-Elastic-Product: Elasticsearch`` to every answer, errors included.

    It is also where an unexpected failure becomes a 500 answer (logged and counted), so that
    answer carries the header too.
    """

    def __init__(self, app: ASGIApp, component: str, pipeline: Pipeline) -> None:
        self.app = app
        self.component = component
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_header(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("X-Elastic-Product", "Elasticsearch")
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        except Exception:
            log.exception("An ingest request failed.", component=self.component, path=scope.get("path"))
            self.pipeline.telemetry.errors.labels(self.component, "request").inc()
            if started:
                raise  # too late for an answer: the connection is closed
            problem = Problem(ProblemType.INTERNAL_ERROR, "an unexpected error; it is logged on the server")
            await problem.response(elasticsearch=True)(scope, receive, send_with_header)


# -- the source ------------------------------------------------------------------------------


class HttpSource:
    """Serves :func:`create_ingest_app` on ``settings.address``, in the running event loop."""

    def __init__(self, component: str, settings: HttpSourceSettings, pipeline: Pipeline, keys: KeyStore) -> None:
        self.component = component
        self.settings = settings
        self._server = AsgiServer(
            create_ingest_app(pipeline, keys, settings, component),
            settings.address,
            name=f"http-{component}",
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) once started."""
        return self._server.address

    async def start(self) -> None:
        """Bind and start serving."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop accepting; requests under way are answered first (up to 10 s)."""
        await self._server.stop()


def build(component: str, settings: HttpSourceSettings, environment: SourceEnvironment) -> HttpSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: http``."""
    if environment.keys is None:
        raise ConfigError(
            f"sources.{component}: an http source checks API keys in Elasticsearch, "
            "which a collector-only agency (forward.url set) does not have"
        )
    return HttpSource(component, settings, environment.pipeline, environment.keys)
