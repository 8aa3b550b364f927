"""What every ingest endpoint shares: the source's :class:`Intake`, the API-key check and the body.

The key is checked before anything else, the body included; the body is then read within the
source's limits and charged to the key's rate limit.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, Request, Response

from secmon.auth import ApiKey, KeyStore, Role, presented_secret
from secmon.auth.limits import KeyRateLimiter, retry_after
from secmon.collect.sources.http.body import read_body
from secmon.collect.sources.settings import HttpSourceSettings
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.collect.transforms.normalize import TRANSFORMS
from secmon.collect.transforms.parse_json import load_json_object
from secmon.events import Event, Record
from secmon.serving.problems import FORBIDDEN, UNAUTHORIZED, Problem, ProblemType

# Formats whose lines must each be a JSON object; the others take any line of text.
JSON_FORMATS = frozenset({"json", "beats", "evtx"})
UNKNOWN_FORMAT = ProblemType("unknown-format", 404, "No such format")
TOO_MANY_EVENTS = ProblemType("too-many-events", 429, "This API key sends more events than its rate limit")
_INGEST_ROLES = frozenset({Role.AGENCY, Role.ADMIN})


class Refused(Exception):
    """One line or bulk item refused: its reason, and the Elasticsearch error type and status of its answer."""

    def __init__(self, reason: str, error_type: str = "mapper_parsing_exception", status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.status = status


class Intake:
    """What turns request bodies into records for the pipeline, on behalf of an API key."""

    def __init__(self, pipeline: Pipeline, keys: KeyStore, settings: HttpSourceSettings, component: str) -> None:
        self.pipeline = pipeline
        self.keys = keys
        self.settings = settings
        self.component = component
        self.formats = known_formats()
        self.limiter = KeyRateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        node = uuid.uuid5(uuid.NAMESPACE_URL, f"secmon:{component}").bytes
        self.node_id = base64.urlsafe_b64encode(node).decode().rstrip("=")  # shaped like Elasticsearch's
        self.seq_no = itertools.count()  # of the documents a bulk answer reports created

    def agency(self, key: ApiKey, claimed: str | None) -> Agency | None:
        """The agency an event is stored for: the one it names if the key covers it, else the key's first."""
        if key.role is Role.AGENCY:
            if claimed is not None and not key.covers(claimed):
                raise Refused(
                    f"organization.id {claimed!r} is not an agency of this API key", "security_exception", 403
                )
            chosen: str | None = claimed or key.agencies[0]
        else:
            chosen = claimed or self.settings.agency
        if chosen is None:
            return None
        return Agency(chosen, self.settings.agency_name if chosen == self.settings.agency else None)

    async def submit(self, batches: dict[Agency | None, list[Record]], fmt: str) -> None:
        """Hand each agency's records to the pipeline; returns once they are durable in the buffer."""
        for agency, records in batches.items():
            await self.pipeline.submit(records, SourceContext(self.component, fmt, agency, self.settings.dataset))

    async def reject(self, raw: str, reason: str, fmt: str, key: ApiKey, where: str) -> None:
        """Dead-letter a refused line under the key's (first) agency."""
        context = SourceContext(self.component, fmt, self.agency(key, None), self.settings.dataset)
        await self.pipeline.reject(raw, reason, context, where=where)

    @staticmethod
    def origin(peer: str | None) -> Event:
        """The fields every event of a request from ``peer`` starts with."""
        origin: Event = {"observer": {"type": "http"}}
        if peer:
            origin["log"] = {"source": {"address": peer}}
        return origin


def known_formats() -> frozenset[str]:
    """What ``format`` (and ``/ingest/{format}``) may name."""
    return frozenset({"auto", *TRANSFORMS})


def json_object(line: str) -> dict[str, Any]:
    """``line`` as a JSON object, or :class:`Refused` saying why it is not one."""
    value = load_json_object(line)
    if isinstance(value, str):
        raise Refused(value)
    return value


def claimed_agency(event: dict[str, Any]) -> str | None:
    """The agency an event names in ``organization.id`` (nested or dotted), if any."""
    organization = event.get("organization")
    value = organization.get("id") if isinstance(organization, dict) else event.get("organization.id")
    return None if value is None or value == "" else str(value)


def json_response(content: Any, status: int = 200) -> Response:
    """``content`` as compact JSON: Vector and Fluent Bit look for '"errors":true' in the raw answer."""
    return Response(orjson.dumps(content), status, media_type="application/json")


def peer(request: Request) -> str | None:
    """The sender's address, host:port."""
    return f"{request.client.host}:{request.client.port}" if request.client else None


# -- dependencies ----------------------------------------------------------------------------


def get_intake(request: Request) -> Intake:
    return cast(Intake, request.app.state.intake)


IntakeDep = Annotated[Intake, Depends(get_intake)]


async def ingest_key(request: Request, intake: IntakeDep) -> ApiKey:
    """The verified API key of the request, which must be allowed to send events.

    Elasticsearch not answering about the key is the error kernel's 503, with ``Retry-After``.
    """
    challenge = {"WWW-Authenticate": "ApiKey"}
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Problem(UNAUTHORIZED, "send an API key: Authorization: ApiKey <key>", headers=challenge)
    secret = presented_secret(authorization)
    key = await intake.keys.verify(secret) if secret else None
    if key is None:
        raise Problem(UNAUTHORIZED, "the API key is unknown, malformed or revoked", headers=challenge)
    if key.role not in _INGEST_ROLES or (key.role is Role.AGENCY and not key.agencies):
        raise Problem(FORBIDDEN, f"a key of role {key.role.value} may not send events; use an agency key")
    return key


IngestKey = Annotated[ApiKey, Depends(ingest_key)]


async def request_body(request: Request, intake: IntakeDep, key: IngestKey) -> bytes:
    """The request body, within ``max_body_bytes`` before and after gunzip, and the key's rate limit."""
    body = await read_body(request, intake.settings.max_body_bytes)
    if intake.limiter is not None:
        lines = body.count(b"\n") + (not body.endswith(b"\n"))
        events = lines // 2 if request.url.path.endswith("/_bulk") else lines  # bulk: an action line per document
        wait = intake.limiter.take(key.id, max(1, events))
        if wait:
            raise Problem(
                TOO_MANY_EVENTS,
                f"key {key.name} may send {intake.limiter.rate:g} events/s; send again in {wait:.1f} s",
                headers={"Retry-After": retry_after(wait)},
            )
    return body


RequestBody = Annotated[bytes, Depends(request_body)]
