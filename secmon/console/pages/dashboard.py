"""The dashboard: alerts over time by level, top rules and hosts, per agency, open vs closed, ATT&CK.

It takes the queue's filters from the URL (a time range, an agency, ...), so every number on it
is a link to the queue of the alerts it counts, and it counts only the session's agencies.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from secmon.api.deps import ServicesDep
from secmon.console.attack import matrix_order, tactic_of
from secmon.console.charts import timeline_chart
from secmon.console.filters import queue_view
from secmon.console.web import LEVELS, AlertReaderSession, page, query_string
from secmon.triage.overview import overview

router = APIRouter(prefix="/console", include_in_schema=False)
HEAT_STEPS = 4


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, services: ServicesDep, session: AlertReaderSession) -> HTMLResponse:
    view = queue_view(request.query_params)
    summary = await overview(services.client, services.alerts.index, view.where, session.key.scope)
    base = {**view.params, "cursor": "", "sort": "", "order": ""}

    def queue_link(**changes: object) -> str:
        return "/" + query_string(base, **changes)

    def window(start: str, end: str | None) -> str:
        return queue_link(range="", since=start, until=end or "")

    tactics = sorted(summary.tactics, key=matrix_order)
    peak = max((count.count for counts in summary.tactics.values() for count in counts), default=0)
    return page(
        request,
        "dashboard.html",
        session,
        view=view,
        summary=summary,
        chart=timeline_chart(summary.timeline, [(level, f"fill-{level}") for level in LEVELS], window, what="alerts"),
        columns=[(tag, tactic_of(tag) if tag else None, summary.tactics[tag]) for tag in tactics],
        heat=lambda count: min(HEAT_STEPS, 1 + (count * HEAT_STEPS - 1) // peak) if peak else 0,
        queue_link=queue_link,
        statuses={count.key: count.count for count in summary.statuses},
    )
