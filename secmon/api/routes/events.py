"""Stored events: search by query string and filters, within the caller's agencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from secmon.api.deps import EventReaderKey, ServicesDep
from secmon.api.schemas import EventPageOut
from secmon.triage.events import EventFilter

router = APIRouter(prefix="/events", tags=["events"])
Values = list[str] | None


@router.get("", response_model=EventPageOut)
async def search_events(
    *,
    services: ServicesDep,
    key: EventReaderKey,
    q: Annotated[
        str | None, Query(max_length=1000, description='Simple query string, e.g. user.name:root "failed password".')
    ] = None,
    dataset: Annotated[Values, Query(description="event.dataset (repeatable).")] = None,
    agency: Annotated[Values, Query(description="Agency id (repeatable); within your key's agencies.")] = None,
    host: Annotated[Values, Query()] = None,
    user: Annotated[Values, Query()] = None,
    source_ip: Annotated[Values, Query()] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="At or before (ISO 8601).")] = None,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=4000, description="next_cursor of the previous page.")] = None,
) -> EventPageOut:
    """Events matching the query and filters, newest first, one page at a time (a cursor lives 5 minutes)."""
    where = EventFilter(
        query=q or None,
        dataset=tuple(dataset or ()),
        agency=tuple(agency or ()),
        host=tuple(host or ()),
        user=tuple(user or ()),
        source_ip=tuple(source_ip or ()),
        since=since,
        until=until,
    )
    page = await services.events.search(where, key.scope, size=size, cursor=cursor)
    return EventPageOut(
        events=page.events, total=page.total, total_is_exact=page.total_is_exact, next_cursor=page.next_cursor
    )
