"""The health strip every page shows: events/s, the disk buffer, the cluster's health, dead letters.

The numbers are what ``secmon status`` reads, from where this process can read them: events/s
from the events Elasticsearch received in the last minute (``event.ingested``, so it is right
whichever process collected them), the disk buffer from this process's pipeline metrics when
the pipeline runs here, and dead letters from their data stream. Counts are within the key's
agencies, as everything else in the console.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from secmon.api.deps import ServicesDep
from secmon.api.services import ApiServices
from secmon.console.web import SignedIn
from secmon.store.names import IndexNames
from secmon.triage.query import Scope, scoped

router = APIRouter(prefix="/console", include_in_schema=False)
RATE_WINDOW_SECONDS = 60
BUFFER_METRIC = "secmon_buffer_bytes"


@dataclass(frozen=True, slots=True)
class Item:
    label: str
    value: str
    state: str  # ok, warn or bad: the strip's colour
    detail: str = ""


@router.get("/health")
async def health(services: ServicesDep, session: SignedIn) -> JSONResponse:
    scope = session.key.scope
    names = IndexNames(services.settings.elasticsearch.index_prefix)
    items = await asyncio.gather(
        _events_per_second(services, names, scope),
        _cluster(services),
        _dead_letters(services, names, scope),
    )
    buffered = _buffer(services)
    listed = [items[0], *([buffered] if buffered else []), items[1], items[2]]
    return JSONResponse({"items": [asdict(item) for item in listed]}, headers={"Cache-Control": "no-store"})


async def _events_per_second(services: ApiServices, names: IndexNames, scope: Scope) -> Item:
    recent = [{"range": {"event.ingested": {"gte": f"now-{RATE_WINDOW_SECONDS}s"}}}]
    count = await _count(services, names.events_pattern, scoped(recent, scope))
    if count is None:
        return Item("events/s", "?", "bad", "Elasticsearch did not answer")
    return Item("events/s", f"{count / RATE_WINDOW_SECONDS:,.1f}", "ok", f"{count:,} stored in the last minute")


async def _cluster(services: ApiServices) -> Item:
    try:
        health = await services.client.options(request_timeout=2, max_retries=0).cluster.health()
    except (ApiError, TransportError) as exc:
        return Item("cluster", "unreachable", "bad", str(exc))
    colour = str(health.get("status", "unknown"))
    state = {"green": "ok", "yellow": "warn"}.get(colour, "bad")
    return Item("cluster", colour, state, f"{health.get('number_of_nodes', '?')} node(s)")


async def _dead_letters(services: ApiServices, names: IndexNames, scope: Scope) -> Item:
    day = [{"range": {"@timestamp": {"gte": "now-24h"}}}]
    count = await _count(services, names.deadletter, scoped(day, scope))
    if count is None:
        return Item("dead letters", "?", "bad", "Elasticsearch did not answer")
    return Item("dead letters (24 h)", f"{count:,}", "warn" if count else "ok", "documents secmon could not store")


def _buffer(services: ApiServices) -> Item | None:
    """The disk buffer of the pipeline running in this process; None where none runs here."""
    for registry in services.registries:
        value = registry.get_sample_value(BUFFER_METRIC)
        if value is not None:
            state = "ok" if value < 1e6 else "warn"
            return Item("disk buffer", f"{value / 1e6:,.1f} MB", state, "waiting for Elasticsearch")
    return None


async def _count(services: ApiServices, index: str, query: dict[str, Any]) -> int | None:
    try:
        response = await services.client.options(request_timeout=2, max_retries=0).count(
            index=index, query=query, ignore_unavailable=True, allow_no_indices=True
        )
    except (ApiError, TransportError):
        return None
    return int(response["count"])
