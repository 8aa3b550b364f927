"""Alerts: list and filter, read with their events, triage (one or many), audit trail, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from secmon.api.deps import AlertReaderKey, ServicesDep, TriageKey
from secmon.api.problems import problem_of
from secmon.api.schemas import (
    SUMMARY_FIELDS,
    AlertDetail,
    AlertPageOut,
    AlertStatsOut,
    AlertSummary,
    AuditEntry,
    BucketOut,
    BulkOutcome,
    BulkTriageIn,
    BulkTriageOut,
    TriageIn,
)
from secmon.triage.audit import Actor
from secmon.triage.query import AlertFilter, AlertSort
from secmon.triage.workflow import Resolution, Status, TriageChange

router = APIRouter(prefix="/alerts", tags=["alerts"])
AlertId = Annotated[str, Path(min_length=1, max_length=200, description="The alert's id.")]
Values = list[str] | None


async def alert_filter(
    *,
    status: Annotated[list[Status] | None, Query(description="open, acknowledged or closed (repeatable).")] = None,
    level: Annotated[Values, Query(description="Rule level: informational … critical (repeatable).")] = None,
    rule: Annotated[Values, Query(description="Rule id (repeatable).")] = None,
    agency: Annotated[
        Values, Query(description="Agency id, organization.id (repeatable); within your key's agencies.")
    ] = None,
    host: Annotated[Values, Query(description="host.name (repeatable).")] = None,
    user: Annotated[Values, Query(description="user.name (repeatable).")] = None,
    source_ip: Annotated[Values, Query(description="source.ip, e.g. an attacker's address (repeatable).")] = None,
    technique: Annotated[Values, Query(description="ATT&CK technique id, e.g. T1059.001 (repeatable).")] = None,
    tag: Annotated[Values, Query(description="A rule tag or an analyst's tag (repeatable).")] = None,
    assignee: Annotated[Values, Query()] = None,
    resolution: Annotated[list[Resolution] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="First seen at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="First seen at or before (ISO 8601).")] = None,
    q: Annotated[
        str | None, Query(max_length=1000, description="Free text (title, description, notes, host, user).")
    ] = None,
) -> AlertFilter:
    return AlertFilter(
        status=[s.value for s in status or ()],
        level=level or (),
        rule=rule or (),
        agency=agency or (),
        host=host or (),
        user=user or (),
        source_ip=source_ip or (),
        technique=[t.upper() for t in technique or ()],
        tag=tag or (),
        assignee=assignee or (),
        resolution=[r.value for r in resolution or ()],
        since=since,
        until=until,
        text=q or None,
    )


FilterDep = Annotated[AlertFilter, Depends(alert_filter)]


@router.get("", response_model=AlertPageOut)
async def list_alerts(
    *,
    services: ServicesDep,
    key: AlertReaderKey,
    where: FilterDep,
    sort: AlertSort = AlertSort.TIME,
    order: Literal["asc", "desc"] = "desc",
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=4000, description="next_cursor of the previous page.")] = None,
) -> AlertPageOut:
    """Alerts matching the filters, newest first unless sorted otherwise, one page at a time."""
    page = await services.alerts.search(
        where, key.scope, sort=sort, descending=order == "desc", size=size, cursor=cursor, fields=SUMMARY_FIELDS
    )
    return AlertPageOut(
        alerts=[AlertSummary.of(alert) for alert in page.alerts],
        total=page.total,
        total_is_exact=page.total_is_exact,
        next_cursor=page.next_cursor,
    )


@router.get("/stats", response_model=AlertStatsOut)
async def alert_stats(
    services: ServicesDep,
    key: AlertReaderKey,
    where: FilterDep,
    by: Annotated[
        list[Literal["level", "status", "rule", "agency", "host", "technique", "assignee"]] | None,
        Query(description="Count by these (repeatable); default level, status, rule and agency."),
    ] = None,
    interval: Annotated[
        str | None,
        Query(pattern=r"^\d{1,4}[smhd]$", description="Timeline bucket, e.g. 1h or 1d."),
    ] = "1h",
) -> AlertStatsOut:
    """Counts for a dashboard: by level, status, rule and agency, and over time."""
    dimensions = list(dict.fromkeys(by or ["level", "status", "rule", "agency"]))
    stats = await services.alerts.stats(where, key.scope, dimensions, interval)
    return AlertStatsOut(
        total=stats.total,
        by={name: [BucketOut(key=b.key, count=b.count) for b in buckets] for name, buckets in stats.by.items()},
        timeline=[BucketOut(key=b.key, count=b.count) for b in stats.timeline],
    )


@router.post("/bulk", response_model=BulkTriageOut)
async def bulk_triage(services: ServicesDep, key: TriageKey, body: BulkTriageIn) -> BulkTriageOut:
    """Apply one triage change to many alerts; each alert's outcome is reported on its own."""
    outcomes = await services.alerts.triage_many(body.ids, _change(body.change), Actor.of(key), key.scope)
    results = []
    for alert_id, outcome in outcomes.items():
        if isinstance(outcome, Exception):
            problem = problem_of(outcome)
            results.append(BulkOutcome(id=alert_id, ok=False, status=problem.status, detail=problem.detail))
        else:
            results.append(BulkOutcome(id=alert_id, ok=True, status=200, alert=AlertSummary.of(outcome)))
    updated = sum(result.ok for result in results)
    return BulkTriageOut(updated=updated, failed=len(results) - updated, results=results)


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(services: ServicesDep, key: AlertReaderKey, alert_id: AlertId) -> AlertDetail:
    """One alert with its notes and the events that raised it."""
    alert = await services.alerts.get(alert_id, key.scope)
    events = await services.alerts.events(alert, key.scope)
    return AlertDetail.of_document(alert, events)


@router.patch("/{alert_id}", response_model=AlertDetail, responses={409: {"description": "Refused by the workflow"}})
async def triage_alert(services: ServicesDep, key: TriageKey, alert_id: AlertId, body: TriageIn) -> AlertDetail:
    """Change an alert's status, resolution, assignee or tags, or add a note; recorded in its audit trail."""
    alert = await services.alerts.triage(alert_id, _change(body), Actor.of(key), key.scope)
    return AlertDetail.of_document(alert, [])


@router.get("/{alert_id}/audit", response_model=list[AuditEntry])
async def alert_audit(services: ServicesDep, key: AlertReaderKey, alert_id: AlertId) -> list[AuditEntry]:
    """Every change made to the alert: who, when, from what to what; oldest first."""
    await services.alerts.get(alert_id, key.scope)  # 404 unless the caller may see the alert
    entries = await services.audit.trail("alert", alert_id, key.scope)
    return [AuditEntry.model_validate(entry) for entry in entries]


def _change(body: TriageIn) -> TriageChange:
    return TriageChange(
        status=body.status,
        resolution=body.resolution,
        assignee=body.assignee,
        add_tags=body.add_tags,
        remove_tags=body.remove_tags,
        note=body.note,
    )
