"""An alert's page: its rule, the events that raised it, its group, notes, audit trail and triage actions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from secmon.api.deps import ServicesDep
from secmon.api.schemas import AlertDetail
from secmon.console.web import AlertReaderSession, page
from secmon.detection.catalog import CatalogError, RuleSource
from secmon.events import flatten, get_field

router = APIRouter(prefix="/console/alerts", include_in_schema=False)
PIVOT_MARGIN = timedelta(hours=1)  # "events of this source IP in ±1 h"


@router.get("/{alert_id}", response_class=HTMLResponse)
async def alert_page(
    request: Request,
    services: ServicesDep,
    session: AlertReaderSession,
    alert_id: str = Path(min_length=1, max_length=200),
) -> HTMLResponse:
    scope = session.key.scope
    document = await services.alerts.get(alert_id, scope)  # 404 unless the key may see it
    events, trail, rule = await asyncio.gather(
        services.alerts.events(document, scope),
        services.audit.trail("alert", alert_id, scope),
        _rule(services.rules.get, (document.get("rule") or {}).get("id")),
    )
    alert = AlertDetail.of_document(document, [])
    return page(
        request,
        "alert.html",
        session,
        alert=alert,
        events=[_event_view(event) for event in events],
        users=list(dict.fromkeys(str(u) for u in (get_field(event, "user.name") for event in events) if u)),
        trail=trail,
        rule=rule,
        rule_fields=document.get("rule") or {},
        pivots=_pivots(alert),
        notice=request.query_params.get("notice"),
    )


async def _rule(get: Any, rule_id: str | None) -> RuleSource | None:
    """The alert's rule with its YAML; None when the catalog no longer has it."""
    if not rule_id:
        return None
    try:
        source: RuleSource = await asyncio.to_thread(get, rule_id)
    except CatalogError:
        return None
    return source


def _event_view(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the page lists it: its id and index, the original message, and its ECS fields in order."""
    document = {name: value for name, value in event.items() if name not in ("id", "index")}
    fields = sorted((name, value) for name, value in flatten(document).items() if name != "event.original")
    return {
        "id": event.get("id"),
        "index": event.get("index"),
        "timestamp": document.get("@timestamp"),
        "original": (document.get("event") or {}).get("original") or document.get("message"),
        "fields": fields,
    }


def _pivots(alert: AlertDetail) -> list[tuple[str, str]]:
    """Links from the alert to what surrounds it: (label, href)."""
    links = []
    if alert.host:
        links.append((f"All alerts for host {alert.host}", "/?" + urlencode({"host": alert.host})))
    source_ip = alert.group.get("source.ip") or alert.source_ip
    if source_ip:
        links.append((f"All alerts about {source_ip}", "/?" + urlencode({"source_ip": source_ip})))
        if alert.first_seen is not None:
            last = alert.last_seen or alert.first_seen
            window = {"source_ip": source_ip, "since": _utc(alert.first_seen - PIVOT_MARGIN)}
            window["until"] = _utc(last + PIVOT_MARGIN)
            links.append((f"Events of {source_ip} in ±1 h", "/console/events?" + urlencode(window)))
    if alert.user:
        links.append((f"All alerts for user {alert.user}", "/?" + urlencode({"user": alert.user})))
    return links


def _utc(moment: datetime) -> str:
    """What a datetime-local input shows, in UTC (the console reads a time without zone as UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
