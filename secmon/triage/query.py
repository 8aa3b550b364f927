"""Alert and event searches as Elasticsearch queries, always inside the caller's agency scope.

The scope is a ``filter`` clause of the same ``bool`` query as every other condition, so no
filter, free-text string, id or aggregation can reach outside it: ``organization.id`` must be
one of the scope's agencies whatever else the query says.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from secmon.errors import SecmonError

Scope = tuple[str, ...] | None  # agencies a caller reads; None for all
AGENCY_FIELD = "organization.id"
# What a free-text alert search looks in.
ALERT_TEXT_FIELDS = ("message", "rule.title", "rule.description", "notes.text", "host.name", "user.name")


class InvalidQuery(SecmonError, ValueError):
    """A filter, cursor or query string that cannot be run; the message says which and why."""


class AlertSort(StrEnum):
    """Orders of the alert list."""

    TIME = "time"  # first seen (@timestamp)
    LAST_SEEN = "last_seen"
    SEVERITY = "severity"
    COUNT = "count"


_SORT_FIELDS = {
    AlertSort.TIME: "@timestamp",
    AlertSort.LAST_SEEN: "alert.last_seen",
    AlertSort.SEVERITY: "event.severity",
    AlertSort.COUNT: "alert.count",
}
TIEBREAK = "alert.id"


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Conditions on alerts; each list matches any of its values, and all given conditions must hold."""

    status: Sequence[str] = ()
    level: Sequence[str] = ()
    rule: Sequence[str] = ()  # rule ids
    agency: Sequence[str] = ()
    host: Sequence[str] = ()
    user: Sequence[str] = ()
    source_ip: Sequence[str] = ()
    technique: Sequence[str] = ()  # ATT&CK ids, e.g. T1059.001
    tag: Sequence[str] = ()  # the rule's tags and the analysts'
    assignee: Sequence[str] = ()
    resolution: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # free text, Elasticsearch simple query string syntax
    created_after: datetime | None = None  # raised by secmon after this (event.created), e.g. since a page loaded
    ids: Sequence[str] = field(default=())


def scoped(conditions: list[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    """A ``bool`` query of ``conditions`` (all must hold), restricted to ``scope``."""
    filters = list(conditions)
    if scope is not None:
        filters.append({"terms": {AGENCY_FIELD: list(scope)}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def alert_query(where: AlertFilter, scope: Scope) -> dict[str, Any]:
    """The query selecting the alerts ``where`` describes, within ``scope``."""
    conditions: list[dict[str, Any]] = []
    for name, values in (
        ("alert.status", where.status),
        ("rule.level", where.level),
        ("rule.id", where.rule),
        (AGENCY_FIELD, where.agency),
        ("host.name", where.host),
        ("user.name", where.user),
        ("source.ip", where.source_ip),
        ("threat.technique.id", where.technique),
        ("alert.assignee", where.assignee),
        ("alert.resolution", where.resolution),
        ("alert.id", where.ids),
    ):
        if values:
            conditions.append({"terms": {name: list(values)}})
    if where.tag:
        tags = list(where.tag)
        conditions.append({"bool": {"should": [{"terms": {"tags": tags}}, {"terms": {"alert.tags": tags}}]}})
    conditions.extend(time_range("@timestamp", where.since, where.until))
    if where.created_after is not None:
        conditions.append({"range": {"event.created": {"gt": where.created_after.isoformat()}}})
    if where.text:
        conditions.append(text_query(where.text, ALERT_TEXT_FIELDS))
    return scoped(conditions, scope)


def time_range(name: str, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """A range condition on ``name`` (empty when neither bound is given)."""
    if since is None and until is None:
        return []
    if since is not None and until is not None and since > until:
        raise InvalidQuery(f"the time range is empty: since {since.isoformat()} is after until {until.isoformat()}")
    bounds: dict[str, str] = {}
    if since is not None:
        bounds["gte"] = since.isoformat()
    if until is not None:
        bounds["lte"] = until.isoformat()
    return [{"range": {name: bounds}}]


def text_query(text: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    """Free text in Elasticsearch's simple query string syntax, which never fails on bad syntax."""
    query: dict[str, Any] = {"query": text, "default_operator": "and", "lenient": True}
    if fields:
        query["fields"] = list(fields)
    return {"simple_query_string": query}


def alert_sort(sort: AlertSort, descending: bool) -> list[dict[str, Any]]:
    """Sort clauses, ending with the alert id so that a cursor is exact."""
    order = "desc" if descending else "asc"
    return [{_SORT_FIELDS[sort]: {"order": order, "missing": "_last"}}, {TIEBREAK: {"order": order}}]


def encode_cursor(sort_values: Sequence[Any]) -> str:
    """An opaque cursor for ``search_after``."""
    return base64.urlsafe_b64encode(orjson.dumps(list(sort_values))).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The ``search_after`` values of a cursor made by :func:`encode_cursor` for the same sort."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidQuery("the cursor is not one this API gave out; start again without it") from None
    if (
        not isinstance(values, list)
        or len(values) != length
        or not all(isinstance(v, (str, int, float)) or v is None for v in values)
    ):
        raise InvalidQuery("the cursor belongs to another sort order; start again without it")
    return values
