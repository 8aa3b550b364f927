"""The queue's and the events search's filters as they sit in the URL (shareable views).

Each filter is a repeatable query parameter named as in ``GET /alerts`` (status, level, rule,
agency, host, user, source_ip, technique, tag, assignee, q) or ``GET /events`` (q, dataset, agency,
host, user, source_ip), plus ``range`` (1h, 24h, 7d, 30d) or ``since``/``until``. A value the
console cannot read is reported, not silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from secmon.triage.events import EventFilter
from secmon.triage.query import AlertFilter, AlertSort
from secmon.triage.workflow import Resolution, Status

LISTS = ("status", "level", "rule", "agency", "host", "user", "source_ip", "technique", "tag", "assignee", "resolution")
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SORTS = tuple(sort.value for sort in AlertSort)


@dataclass(slots=True)
class QueueView:
    """What the URL asks of the queue: filters, order, page, and what in it could not be read."""

    where: AlertFilter
    params: dict[str, Any]  # the filters as given, for links that change one of them
    sort: AlertSort = AlertSort.TIME
    descending: bool = True
    cursor: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def narrowed(self) -> bool:
        """Filters beyond text, status, level and range are set (the queue then shows them unfolded)."""
        return any(self.params.get(name) for name in (*LISTS[2:], "since", "until"))


def queue_view(query: QueryParams) -> QueueView:
    """The view the query string describes."""
    problems: list[str] = []
    params: dict[str, Any] = {name: [v for v in query.getlist(name) if v.strip()] for name in LISTS}
    for name, allowed in (("status", [s.value for s in Status]), ("resolution", [r.value for r in Resolution])):
        wrong = [v for v in params[name] if v not in allowed]
        if wrong:
            problems.append(f"{name} {', '.join(wrong)} is not one of {', '.join(allowed)}")
            params[name] = [v for v in params[name] if v in allowed]
    text = query.get("q", "").strip()
    since, until = _span(query, problems)
    sort_name = query.get("sort", AlertSort.TIME.value)
    if sort_name not in SORTS:
        problems.append(f"sort {sort_name} is not one of {', '.join(SORTS)}")
        sort_name = AlertSort.TIME.value
    where = AlertFilter(
        status=tuple(params["status"]),
        level=tuple(params["level"]),
        rule=tuple(params["rule"]),
        agency=tuple(params["agency"]),
        host=tuple(params["host"]),
        user=tuple(params["user"]),
        source_ip=tuple(params["source_ip"]),
        technique=tuple(t.upper() for t in params["technique"]),
        tag=tuple(params["tag"]),
        assignee=tuple(params["assignee"]),
        resolution=tuple(params["resolution"]),
        since=since,
        until=until,
        text=text or None,
    )
    params.update(q=text, range=_range_of(query), since=query.get("since", ""), until=query.get("until", ""))
    params.update(sort=sort_name if sort_name != AlertSort.TIME.value else "", order=query.get("order", ""))
    return QueueView(
        where,
        params,
        AlertSort(sort_name),
        query.get("order", "desc") != "asc",
        query.get("cursor") or None,
        problems,
    )


def _span(query: QueryParams, problems: list[str]) -> tuple[datetime | None, datetime | None]:
    """The time range of ``range`` (last hour, day, ...) or ``since``/``until``."""
    span = query.get("range", "")
    since, until = _time(query.get("since"), "since", problems), _time(query.get("until"), "until", problems)
    if span in RANGES:
        since = datetime.now(UTC) - RANGES[span]
    elif span:
        problems.append(f"range {span} is not one of {', '.join(RANGES)}")
    if since and until and since > until:
        problems.append("since is after until: the time range is ignored")
        since = until = None
    return since, until


def _range_of(query: QueryParams) -> str:
    span = query.get("range", "")
    return span if span in RANGES else ""


def _time(value: str | None, name: str, problems: list[str]) -> datetime | None:
    """An ISO time, or the value of a datetime-local input (read as UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{name} {value!r} is not a time such as 2026-12-01T08:00")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


EVENT_LISTS = ("dataset", "agency", "host", "user", "source_ip")
DEFAULT_COLUMNS = ("@timestamp", "event.dataset", "host.name", "user.name", "source.ip", "message")
MOST_COLUMNS = 12


@dataclass(slots=True)
class EventsView:
    """What the URL asks of the events search: its filters (those of ``GET /events``), columns, page."""

    where: EventFilter
    params: dict[str, Any]
    columns: list[str]
    cursor: str | None = None
    problems: list[str] = field(default_factory=list)


def events_view(query: QueryParams) -> EventsView:
    """The events search the query string describes; ``columns`` is a comma-separated list of fields."""
    problems: list[str] = []
    params: dict[str, Any] = {name: [v for v in query.getlist(name) if v.strip()] for name in EVENT_LISTS}
    since, until = _span(query, problems)
    text = query.get("q", "").strip()
    chosen = [name.strip() for name in query.get("columns", "").split(",") if name.strip()]
    if len(chosen) > MOST_COLUMNS:
        problems.append(f"{len(chosen)} columns were asked for; the first {MOST_COLUMNS} are shown")
    columns = list(dict.fromkeys(chosen))[:MOST_COLUMNS] or list(DEFAULT_COLUMNS)
    where = EventFilter(
        query=text or None,
        dataset=tuple(params["dataset"]),
        agency=tuple(params["agency"]),
        host=tuple(params["host"]),
        user=tuple(params["user"]),
        source_ip=tuple(params["source_ip"]),
        since=since,
        until=until,
    )
    params.update(q=text, range=_range_of(query), since=query.get("since", ""), until=query.get("until", ""))
    params.update(columns=",".join(columns) if chosen else "")
    return EventsView(where, params, columns, query.get("cursor") or None, problems)
