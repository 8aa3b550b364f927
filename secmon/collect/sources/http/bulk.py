"""``POST|PUT /_bulk`` and ``/{index}/_bulk``: Elasticsearch's bulk API, answered in its shape, item by item.

Filebeat, Winlogbeat, Vector and Fluent Bit ship to secmon with their Elasticsearch output;
a collector-only secmon (``forward:``) sends its normalized events here with ``?format=json``.
An item secmon cannot take (not JSON, a delete or an update, an agency the key does not have)
is answered with its own error and dead-lettered; the rest of the request is stored.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from secmon.auth import ApiKey
from secmon.collect.sources.http.body import EMPTY_BODY, body_text
from secmon.collect.sources.http.intake import (
    JSON_FORMATS,
    UNKNOWN_FORMAT,
    IngestKey,
    Intake,
    IntakeDep,
    Refused,
    RequestBody,
    claimed_agency,
    ingest_key,
    json_object,
    json_response,
    peer,
)
from secmon.collect.topology import Agency
from secmon.events import Record
from secmon.serving.problems import Problem

# The format of documents arriving through _bulk: JSON objects shaped by Beats, Vector or Fluent Bit.
BULK_FORMAT = "beats"
_BULK_OPS = frozenset({"index", "create", "delete", "update"})
_SHARDS = {"total": 1, "successful": 1, "failed": 0}


@dataclass(slots=True)
class BulkItem:
    """One action of a bulk body with its document line, as found."""

    op: str
    index: str
    id: str | None
    line: int  # of the action
    source: str | None
    raw: str  # the action and source lines, for the dead-letter stream
    refused: Refused | None = None


async def ingest_bulk(
    intake: Intake, body: bytes, path_index: str | None, key: ApiKey, sender: str | None, *, fmt: str = BULK_FORMAT
) -> dict[str, Any]:
    """Submit the documents of a ``_bulk`` body; the answer is Elasticsearch's, item by item.

    ``fmt`` is how the documents are parsed: shippers' documents by default, ``json`` for
    events another secmon normalized already and forwards (kept as they are).
    """
    if fmt not in JSON_FORMATS:
        known = ", ".join(sorted(JSON_FORMATS))
        raise Problem(UNKNOWN_FORMAT, f"no bulk format {fmt!r}; known: {known}")
    started = time.monotonic()
    text = body_text(body)
    origin = intake.origin(sender)
    received = time.time()
    batches: dict[Agency | None, list[Record]] = {}
    items: list[dict[str, Any]] = []
    for item in bulk_items(text.split("\n"), path_index or ""):
        try:
            if item.refused is not None:
                raise item.refused
            document = json_object(item.source or "")
            agency = intake.agency(key, claimed_agency(document))
        except Refused as refused:
            error = {"type": refused.error_type, "reason": refused.reason}
            items.append({item.op: {"_index": item.index, "_id": item.id, "status": refused.status, "error": error}})
            if item.op in ("index", "create"):
                await intake.reject(item.raw, refused.reason, fmt, key, where=f"line {item.line}")
            continue
        doc_id = item.id or _new_id()
        # The key makes the stored id deterministic: the same document sent again is stored once.
        record_key = f"{agency.id if agency else ''}/{item.index}/{doc_id}"
        message = orjson.dumps(document).decode()
        batches.setdefault(agency, []).append(Record(message, origin, received, key=record_key))
        items.append({item.op: _created(intake, item.index, doc_id)})
    if not items:
        raise Problem(EMPTY_BODY, "the bulk body holds no action")
    await intake.submit(batches, fmt)
    took = int((time.monotonic() - started) * 1000)
    errors = any("error" in next(iter(entry.values())) for entry in items)
    return {"took": took, "errors": errors, "items": items}


def _created(intake: Intake, index: str, doc_id: str) -> dict[str, Any]:
    return {
        "_index": index,
        "_id": doc_id,
        "_version": 1,
        "result": "created",
        "_shards": _SHARDS,
        "_seq_no": next(intake.seq_no),
        "_primary_term": 1,
        "status": 201,
    }


def bulk_items(lines: list[str], default_index: str) -> Iterator[BulkItem]:
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
            yield BulkItem("index", default_index, None, number, source, raw, Refused(reason, "parse_exception"))
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
            refusal = Refused(
                "delete is not supported by secmon: events are never deleted", "illegal_argument_exception"
            )
            yield BulkItem(op, index, doc_id, number, None, action_line, refusal)
            continue
        source = lines[position].removesuffix("\r") if position < len(lines) else None
        position += 1
        raw = action_line if source is None else f"{action_line}\n{source}"
        if malformed is not None:
            reason = f"Malformed action/metadata line [{number}], expected a simple value for field [{malformed}]"
            yield BulkItem(op, index, doc_id, number, source, raw, Refused(reason, "parse_exception"))
        elif op == "update":
            refusal = Refused(
                "update is not supported by secmon: events are never changed", "illegal_argument_exception"
            )
            yield BulkItem(op, index, doc_id, number, source, raw, refusal)
        elif source is None or not source.strip():
            yield BulkItem(op, index, doc_id, number, source, raw, Refused("the document line is missing or empty"))
        else:
            yield BulkItem(op, index, doc_id, number, source, raw)


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


router = APIRouter(tags=["elasticsearch"], dependencies=[Depends(ingest_key)])

# Not an Elasticsearch parameter: a secmon agency forwarding its normalized events sends format=json.
BulkFormat = Annotated[
    str, Query(alias="format", description="How to parse the documents: beats (shippers), or json (ECS events).")
]


@router.api_route("/_bulk", methods=["POST", "PUT"])
async def bulk(
    intake: IntakeDep, key: IngestKey, body: RequestBody, request: Request, fmt: BulkFormat = BULK_FORMAT
) -> Response:
    """Store the documents of an Elasticsearch bulk request, answered as Elasticsearch does."""
    return json_response(await ingest_bulk(intake, body, None, key, peer(request), fmt=fmt))


@router.api_route("/{index}/_bulk", methods=["POST", "PUT"])
async def bulk_index(
    index: str, *, intake: IntakeDep, key: IngestKey, body: RequestBody, request: Request, fmt: BulkFormat = BULK_FORMAT
) -> Response:
    """Store the documents of an Elasticsearch bulk request to ``index``, answered as Elasticsearch does."""
    return json_response(await ingest_bulk(intake, body, index, key, peer(request), fmt=fmt))
