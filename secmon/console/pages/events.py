"""The events search: ``GET /events``'s query string and filters, a time histogram, chosen columns.

The columns are a URL parameter (``columns=host.name,user.name``), so a view can be shared; each
row opens to the event's whole document, where a field can be added as a column.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from secmon.api.deps import ServicesDep
from secmon.console.charts import timeline_chart
from secmon.console.filters import events_view
from secmon.console.web import EventSession, page, query_string
from secmon.events import flatten

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50


@router.get("/events", response_class=HTMLResponse)
async def events(request: Request, services: ServicesDep, session: EventSession) -> HTMLResponse:
    view = events_view(request.query_params)
    scope = session.key.scope
    found, bars = await asyncio.gather(
        services.events.search(view.where, scope, size=PAGE_SIZE, cursor=view.cursor),
        services.events.timeline(view.where, scope),
    )

    def window(start: str, end: str | None) -> str:
        return "/console/events" + query_string(view.params, range="", since=start, until=end or "")

    def with_column(name: str) -> str:
        columns = ",".join([*view.columns, name]) if name not in view.columns else view.params["columns"]
        return "/console/events" + query_string(view.params, columns=columns)

    def without_column(name: str) -> str:
        return "/console/events" + query_string(view.params, columns=",".join(c for c in view.columns if c != name))

    return page(
        request,
        "events.html",
        session,
        view=view,
        found=found,
        rows=[_row(event, view.columns) for event in found.events],
        chart=timeline_chart(bars, [("", "fill-accent")], window, what="events"),
        width=bars.width,
        with_column=with_column,
        without_column=without_column,
    )


def _row(event: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    document = {name: value for name, value in event.items() if name not in ("id", "index")}
    fields = flatten(document)
    return {
        "id": event.get("id"),
        "index": event.get("index"),
        "cells": [fields.get(name) for name in columns],
        "original": (document.get("event") or {}).get("original"),
        "fields": sorted((name, value) for name, value in fields.items() if name != "event.original"),
    }
