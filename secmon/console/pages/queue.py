"""The alert queue, the console's default page: filters in the URL, counts, sorting, paging by cursor.

Paging follows a cursor (``search_after``), never an offset, so page 20,000 of a million alerts
costs what page 1 does. ``/console/queue/new`` answers the page's polling: how many alerts of the
same view secmon raised since the page was rendered (the "N new" marker).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from secmon.api.deps import ServicesDep
from secmon.api.schemas import SUMMARY_FIELDS, AlertSummary
from secmon.console.filters import queue_view
from secmon.console.web import AlertReaderSession, page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/", response_class=HTMLResponse)
async def queue(request: Request, services: ServicesDep, session: AlertReaderSession) -> HTMLResponse:
    """The queue of alerts the URL's filters select, with counts by level and status."""
    view = queue_view(request.query_params)
    scope = session.key.scope
    rendered_at = datetime.now(UTC)
    listing, stats = await asyncio.gather(
        services.alerts.search(
            view.where,
            scope,
            sort=view.sort,
            descending=view.descending,
            size=PAGE_SIZE,
            cursor=view.cursor,
            fields=SUMMARY_FIELDS,
        ),
        # The counts ignore the level and status filters, so that each count is a link to its view.
        services.alerts.stats(replace(view.where, level=(), status=()), scope, ["level", "status"], None),
    )
    return page(
        request,
        "queue.html",
        session,
        view=view,
        alerts=[AlertSummary.of(alert) for alert in listing.alerts],
        total=listing.total,
        total_is_exact=listing.total_is_exact,
        next_cursor=listing.next_cursor,
        counts={name: {b.key: b.count for b in buckets} for name, buckets in stats.by.items()},
        rendered_at=rendered_at.isoformat(),
        notice=request.query_params.get("notice"),
    )


@router.get("/console/queue/new")
async def new_alerts(request: Request, services: ServicesDep, session: AlertReaderSession) -> JSONResponse:
    """How many alerts of the queue's view were raised after ``after`` (the page's render time)."""
    view = queue_view(request.query_params)
    try:
        after = datetime.fromisoformat(request.query_params.get("after", ""))
    except ValueError:
        return JSONResponse({"new": 0, "problem": "after is not an ISO time"}, status_code=422)
    where = replace(view.where, created_after=after)
    listing = await services.alerts.search(where, session.key.scope, size=1, fields=("alert.id",))
    return JSONResponse({"new": listing.total, "exact": listing.total_is_exact}, headers={"Cache-Control": "no-store"})
