"""What the API's ``/rules`` and the console's rules page both do: count a rule's alerts, change
a rule with its audit entry, and test a rule against the stored events of the last hours.

Catalog calls read files and run pySigma, so they run in a thread (:func:`in_thread`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from secmon.api.services import ApiServices
from secmon.auth import ApiKey
from secmon.detection.catalog import RuleInfo, RuleTest
from secmon.store.ready import REQUEST_READY_SECONDS, read_when_ready
from secmon.triage.audit import Actor
from secmon.triage.query import Scope, scoped
from secmon.triage.workflow import FieldChange

MAX_TEST_EVENTS = 10_000  # one search: Elasticsearch's default max_result_window
P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a catalog call off the event loop."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def alert_counts(services: ApiServices, scope: Scope, rule_ids: list[str]) -> dict[str, int]:
    """Alerts per rule id in ``scope``: one terms aggregation."""
    if not rule_ids:
        return {}
    response = await services.client.search(
        index=services.alerts.index,
        query=scoped([{"terms": {"rule.id": rule_ids}}], scope),
        aggregations={"rules": {"terms": {"field": "rule.id", "size": len(rule_ids)}}},
        size=0,
        ignore_unavailable=True,
    )
    buckets = response.get("aggregations", {}).get("rules", {}).get("buckets", [])
    return {str(bucket["key"]): int(bucket["doc_count"]) for bucket in buckets}


async def set_enabled(services: ApiServices, key: ApiKey, rule_id: str, enabled: bool) -> RuleInfo:
    """Enable or disable a rule; a change is recorded in the audit trail under the key's name."""
    info, before = await services.rules.set_enabled(rule_id, enabled, by=key.name)
    if before != enabled:
        action = "enable" if enabled else "disable"
        await services.audit.record(Actor.of(key), action, "rule", rule_id, [FieldChange("enabled", before, enabled)])
    return info


async def upload(services: ApiServices, key: ApiKey, text: str) -> RuleInfo:
    """Add (or replace an uploaded) rule; :class:`~secmon.detection.catalog.RuleRefused` says what does not load."""
    uploaded = await services.rules.upload(text, by=key.name)
    action = "upload" if uploaded.replaced is None else "replace"
    change = FieldChange("yaml", uploaded.replaced, text)
    await services.audit.record(Actor.of(key), action, "rule", uploaded.info.id, [change])
    return uploaded.info


@dataclass(frozen=True, slots=True)
class StoredTest:
    result: RuleTest
    hits: list[dict[str, Any]]  # the events scanned, as Elasticsearch returned them (position → hit)
    truncated: bool  # more events were in the time range than were scanned


async def test_on_stored(
    services: ApiServices,
    scope: Scope,
    *,
    hours: float,
    limit: int = MAX_TEST_EVENTS,
    rule_id: str | None = None,
    text: str | None = None,
) -> StoredTest:
    """Match one rule (a catalog id, or YAML text not uploaded yet) against the newest ``limit``
    stored events of the last ``hours`` in ``scope``."""
    if rule_id is not None:
        await in_thread(services.rules.get, rule_id)  # not found before searching
    since = datetime.now(UTC) - timedelta(hours=hours)
    # The events may sit in a data stream the writer created a moment ago, primary not started yet.
    response = await read_when_ready(
        services.client,
        lambda: services.client.search(
            index=services.alerts.names.events_pattern,
            query=scoped([{"range": {"@timestamp": {"gte": since.isoformat()}}}], scope),
            sort=[{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
            size=limit,
            track_total_hits=limit + 1,
            ignore_unavailable=True,
            allow_no_indices=True,
        ),
        timeout=REQUEST_READY_SECONDS,
    )
    hits = response["hits"]["hits"]
    result = await in_thread(
        services.rules.test,
        [hit["_source"] for hit in hits],
        text=text,
        rule_id=rule_id,
        event_ids=[hit["_id"] for hit in hits],
    )
    return StoredTest(result, hits, int(response["hits"]["total"]["value"]) > len(hits))
