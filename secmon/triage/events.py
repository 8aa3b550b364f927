"""Stored events, searched by analysts: query string, filters and time range, in their scope.

Pages are read from a point in time, so that a page never repeats or skips events that arrive
while an analyst pages through (events arrive all the time); the cursor carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch, NotFoundError

from secmon.store.names import IndexNames
from secmon.store.ready import REQUEST_READY_SECONDS, read_when_ready
from secmon.triage.query import InvalidQuery, Scope, decode_cursor, encode_cursor, scoped, text_query, time_range
from secmon.triage.timeline import Timeline, timeline

MAX_PAGE = 500
KEEP_ALIVE = "5m"  # how long a cursor stays valid between two pages


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Conditions on events; all given ones must hold."""

    query: str | None = None  # Elasticsearch simple query string, over every field
    dataset: tuple[str, ...] = ()
    agency: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    source_ip: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[dict[str, Any]]
    total: int
    total_is_exact: bool
    next_cursor: str | None


class EventSearch:
    """Searches ``<prefix>-events-*``."""

    def __init__(
        self, client: AsyncElasticsearch, names: IndexNames, *, ready_timeout: float = REQUEST_READY_SECONDS
    ) -> None:
        self.client = client
        self.pattern = names.events_pattern
        self.ready_timeout = ready_timeout  # how long a search waits for an index whose shard is starting

    async def search(self, where: EventFilter, scope: Scope, *, size: int = 50, cursor: str | None = None) -> EventPage:
        """One page of matching events, newest first."""
        size = min(size, MAX_PAGE)
        if cursor:
            pit, after = _open_cursor(cursor)
        else:
            # A point in time fails while any index behind the pattern has no started primary,
            # as a dataset's new data stream has for a moment after its first event.
            opened = await read_when_ready(
                self.client,
                lambda: self.client.open_point_in_time(
                    index=self.pattern,
                    keep_alive=KEEP_ALIVE,
                    ignore_unavailable=True,
                    allow_partial_search_results=False,
                ),
                timeout=self.ready_timeout,
            )
            pit, after = str(opened["id"]), None
        body: dict[str, Any] = {
            "query": _event_query(where, scope),
            "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "date"}}, {"_shard_doc": "desc"}],
            "size": size,
            "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
            "track_total_hits": 10_000,
        }
        if after is not None:
            body["search_after"] = after
        try:
            response = await self.client.search(**body)
        except NotFoundError:
            raise InvalidQuery("the cursor has expired (5 minutes between pages); start again without it") from None
        hits = response["hits"]["hits"]
        total = response["hits"]["total"]
        next_cursor = None
        if len(hits) == size:
            next_cursor = encode_cursor([response.get("pit_id", pit), orjson.dumps(hits[-1]["sort"]).decode()])
        else:
            await self.client.close_point_in_time(id=response.get("pit_id", pit))
        events = [{"id": hit["_id"], "index": hit["_index"], **hit["_source"]} for hit in hits]
        return EventPage(events, int(total["value"]), total["relation"] == "eq", next_cursor)

    async def timeline(self, where: EventFilter, scope: Scope) -> Timeline:
        """How many matching events there are over time."""
        return await timeline(self.client, self.pattern, _event_query(where, scope))


def _event_query(where: EventFilter, scope: Scope) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    for name, values in (
        ("event.dataset", where.dataset),
        ("organization.id", where.agency),
        ("host.name", where.host),
        ("user.name", where.user),
        ("source.ip", where.source_ip),
    ):
        if values:
            conditions.append({"terms": {name: list(values)}})
    conditions.extend(time_range("@timestamp", where.since, where.until))
    if where.query:
        conditions.append(text_query(where.query))
    return scoped(conditions, scope)


def _open_cursor(cursor: str) -> tuple[str, list[Any]]:
    pit, after = decode_cursor(cursor, 2)
    try:
        values = orjson.loads(after)
    except (orjson.JSONDecodeError, TypeError):
        raise InvalidQuery("the cursor is not one this API gave out; start again without it") from None
    if not isinstance(pit, str) or not isinstance(values, list):
        raise InvalidQuery("the cursor is not one this API gave out; start again without it")
    return pit, values
