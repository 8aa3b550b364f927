"""Alerts as analysts see them: search, detail with the triggering events, triage, statistics.

Every method takes the caller's :data:`~secmon.triage.query.Scope`; an alert outside it is
indistinguishable from one that does not exist. Triage writes use optimistic concurrency
(``if_seq_no``): detection may grow an alert (count, last seen) while an analyst changes it,
and neither overwrites the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch

from secmon.errors import SecmonError, StoreError
from secmon.store.names import IndexNames
from secmon.triage.audit import Actor, AuditLog
from secmon.triage.query import (
    AlertFilter,
    AlertSort,
    Scope,
    alert_query,
    alert_sort,
    decode_cursor,
    encode_cursor,
    scoped,
)
from secmon.triage.workflow import Applied, TriageChange, TriageError, apply

MAX_PAGE = 500
MAX_BULK = 1_000  # alerts changed by one bulk request
_WRITE_ATTEMPTS = 5  # conflicts with detection's own updates, retried on the fresh document
_LIST_TOTAL_LIMIT = 10_000  # counting matches exactly past this costs more than a page is worth


class AlertNotFound(SecmonError, LookupError):
    """No alert with this id in the caller's scope."""


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[dict[str, Any]]
    total: int
    total_is_exact: bool
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class AlertStats:
    total: int
    by: dict[str, list[Bucket]]
    timeline: list[Bucket]


STAT_FIELDS = {
    "level": "rule.level",
    "status": "alert.status",
    "rule": "rule.id",
    "agency": "organization.id",
    "host": "host.name",
    "technique": "threat.technique.id",
    "assignee": "alert.assignee",
}


class AlertStore:
    """The alerts index, for analysts."""

    def __init__(self, client: AsyncElasticsearch, names: IndexNames, audit: AuditLog) -> None:
        self.client = client
        self.names = names
        self.index = names.alerts
        self.audit = audit

    async def search(
        self,
        where: AlertFilter,
        scope: Scope,
        *,
        sort: AlertSort = AlertSort.TIME,
        descending: bool = True,
        size: int = 50,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> AlertPage:
        """One page of the alerts matching ``where``; ``next_cursor`` fetches the next one.

        ``fields`` limits what is read of each alert (less for Elasticsearch to fetch and for
        this process to parse); the default is whole alerts.
        """
        sort_clauses = alert_sort(sort, descending)
        body: dict[str, Any] = {
            "query": alert_query(where, scope),
            "sort": sort_clauses,
            "size": min(size, MAX_PAGE),
            "track_total_hits": _LIST_TOTAL_LIMIT,
        }
        if fields is not None:
            body["_source"] = list(fields)
        if cursor:
            body["search_after"] = decode_cursor(cursor, len(sort_clauses))
        response = await self.client.search(index=self.index, **body)
        hits = response["hits"]["hits"]
        total = response["hits"]["total"]
        next_cursor = encode_cursor(hits[-1]["sort"]) if len(hits) == body["size"] else None
        return AlertPage([_alert(hit) for hit in hits], int(total["value"]), total["relation"] == "eq", next_cursor)

    async def get(self, alert_id: str, scope: Scope) -> dict[str, Any]:
        """The alert ``alert_id``, if the caller may see it."""
        return _alert(await self._hit(alert_id, scope, seq_no=False))

    async def events(self, alert: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        """The stored events that raised ``alert`` (at most the last 100 it lists), in its order."""
        event = alert.get("event") or {}
        ids, indices = list(event.get("ids") or []), list(event.get("indices") or [])
        if not ids or not indices:
            return []
        response = await self.client.search(
            index=",".join(indices),
            query=scoped([{"ids": {"values": ids}}], scope),
            size=len(ids),
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        found = {
            hit["_id"]: {"id": hit["_id"], "index": hit["_index"], **hit["_source"]} for hit in response["hits"]["hits"]
        }
        return [found[event_id] for event_id in ids if event_id in found]

    async def triage(self, alert_id: str, change: TriageChange, actor: Actor, scope: Scope) -> dict[str, Any]:
        """Apply ``change`` to one alert, record it in the audit trail, and return the alert as it now is.

        Raises :class:`AlertNotFound`, or :class:`~secmon.triage.workflow.TriageError` for a change
        the workflow refuses.
        """
        outcome = (await self.triage_many([alert_id], change, actor, scope))[alert_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def triage_many(
        self, alert_ids: Sequence[str], change: TriageChange, actor: Actor, scope: Scope
    ) -> dict[str, dict[str, Any] | Exception]:
        """Apply ``change`` to each alert: one bulk write, one audit entry per changed alert.

        The outcome per id is the alert as it now is, :class:`AlertNotFound`, or the
        :class:`~secmon.triage.workflow.TriageError` that refused it.
        """
        outcomes: dict[str, dict[str, Any] | Exception] = {}
        pending = list(dict.fromkeys(alert_ids))
        for _ in range(_WRITE_ATTEMPTS):
            if not pending:
                break
            hits = await self._hits(pending, scope)
            at = datetime.now(UTC)
            operations: list[dict[str, Any]] = []
            applied_by_id: dict[str, tuple[dict[str, Any], Applied]] = {}
            for alert_id in pending:
                hit = hits.get(alert_id)
                if hit is None:
                    outcomes[alert_id] = AlertNotFound(alert_id)
                    continue
                current = hit["_source"].get("alert") or {}
                try:
                    applied = apply(current, change, actor=actor.name, at=at)
                except TriageError as refused:
                    outcomes[alert_id] = refused
                    continue
                if not applied.changes:
                    outcomes[alert_id] = _alert(hit)
                    continue
                applied_by_id[alert_id] = (hit, applied)
                operations.append(
                    {"update": {"_id": alert_id, "if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}}
                )
                operations.append({"doc": _partial(hit["_source"], applied)})
            pending = []
            if not operations:
                break
            response = await self.client.bulk(index=self.index, operations=operations, refresh="wait_for")
            entries = []
            for item in response["items"]:
                result = item["update"]
                alert_id = result["_id"]
                hit, applied = applied_by_id[alert_id]
                if result.get("status") == 409:
                    pending.append(alert_id)  # changed meanwhile (detection, another analyst): decide again
                elif "error" in result:
                    outcomes[alert_id] = StoreError(f"alert {alert_id}: {result['error'].get('reason')}")
                else:
                    agency = (hit["_source"].get("organization") or {}).get("id")
                    entries.append((alert_id, applied, agency))
            await self.audit.record_many(
                [
                    (actor, "triage", "alert", alert_id, applied.changes, agency)
                    for alert_id, applied, agency in entries
                ],
                at=at,
            )
            if entries:
                now = await self._hits([alert_id for alert_id, _, _ in entries], scope)
                outcomes.update({alert_id: _alert(now[alert_id]) for alert_id, _, _ in entries if alert_id in now})
        for alert_id in pending:
            outcomes[alert_id] = StoreError(f"alert {alert_id} kept changing while being updated; try again")
        return {alert_id: outcomes[alert_id] for alert_id in dict.fromkeys(alert_ids)}

    async def stats(self, where: AlertFilter, scope: Scope, by: Sequence[str], interval: str | None) -> AlertStats:
        """Counts of the matching alerts by each dimension of ``by``, and over time per ``interval``."""
        aggs: dict[str, Any] = {name: {"terms": {"field": STAT_FIELDS[name], "size": 50}} for name in by}
        if interval:
            aggs["timeline"] = {"date_histogram": {"field": "@timestamp", "fixed_interval": interval}}
        response = await self.client.search(
            index=self.index, query=alert_query(where, scope), size=0, aggs=aggs, track_total_hits=True
        )
        results = response.get("aggregations") or {}
        return AlertStats(
            total=int(response["hits"]["total"]["value"]),
            by={name: [Bucket(str(b["key"]), int(b["doc_count"])) for b in results[name]["buckets"]] for name in by},
            timeline=[
                Bucket(str(b["key_as_string"]), int(b["doc_count"]))
                for b in (results.get("timeline") or {}).get("buckets", [])
            ],
        )

    async def _hit(self, alert_id: str, scope: Scope, *, seq_no: bool) -> dict[str, Any]:
        hit = (await self._hits([alert_id], scope, seq_no=seq_no)).get(alert_id)
        if hit is None:
            raise AlertNotFound(alert_id)
        return hit

    async def _hits(self, alert_ids: Sequence[str], scope: Scope, *, seq_no: bool = True) -> dict[str, dict[str, Any]]:
        response = await self.client.search(
            index=self.index,
            query=scoped([{"ids": {"values": list(alert_ids)}}], scope),
            size=len(alert_ids),
            seq_no_primary_term=seq_no,
        )
        return {hit["_id"]: hit for hit in response["hits"]["hits"]}


def _partial(current: dict[str, Any], applied: Applied) -> dict[str, Any]:
    """The partial document of a triage change to the stored alert ``current`` (no scripts: the
    local node has no Painless).

    Notes are an array, which a partial update replaces whole: the new list is the current one
    plus the note, safe because the write is conditional on the version it was read from. They
    are a top-level ``notes``: alerts indices of earlier versions map ``alert.notes`` as text.
    """
    partial: dict[str, Any] = {"alert": dict(applied.partial)}
    if applied.note is not None:
        partial["notes"] = [*(current.get("notes") or []), applied.note]
    return partial


def _alert(hit: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = hit["_source"]
    alert = source.setdefault("alert", {})
    alert.setdefault("id", hit["_id"])
    alert.setdefault("status", "open")
    return source
