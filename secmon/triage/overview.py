"""What a dashboard shows of the alerts a filter selects, within a scope.

Alerts over time by level (:mod:`secmon.triage.timeline`), the top rules and hosts, alerts per
agency and per status, and the ATT&CK matrix. Sigma rules tag tactics (``attack.credential-access``)
and techniques (``attack.t1110``) separately, without saying which technique serves which tactic,
so a cell (tactic, technique) counts the alerts of rules carrying both tags; the techniques of
rules that tag no tactic are counted under ``None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch

from secmon.triage.query import AGENCY_FIELD, AlertFilter, Scope, alert_query
from secmon.triage.timeline import Timeline, timeline

TOP = 10
MATRIX_TECHNIQUES = 100  # per tactic; ATT&CK's largest tactic has fewer than 50
# attack.credential-access (a Lucene regexp); technique (t1059), group and software tags have digits
TACTIC_TAG = r"attack\.[a-z_\-]+"


@dataclass(frozen=True, slots=True)
class Count:
    key: str
    count: int
    label: str = ""  # what to show for key, where it differs (a rule's title)


@dataclass(frozen=True, slots=True)
class Overview:
    total: int
    timeline: Timeline  # split by rule.level
    rules: list[Count]
    hosts: list[Count]
    agencies: list[Count]
    statuses: list[Count]
    tactics: dict[str | None, list[Count]]  # tactic tag (e.g. attack.credential-access) → its techniques


async def overview(client: AsyncElasticsearch, index: str, where: AlertFilter, scope: Scope) -> Overview:
    """The dashboard of the alerts ``where`` selects in ``scope``."""
    query = alert_query(where, scope)
    techniques = {"terms": {"field": "threat.technique.id", "size": MATRIX_TECHNIQUES}}
    aggs: dict[str, Any] = {
        "rules": {
            "terms": {"field": "rule.id", "size": TOP},
            "aggs": {"title": {"terms": {"field": "rule.title", "size": 1}}},
        },
        "hosts": {"terms": {"field": "host.name", "size": TOP}},
        "agencies": {"terms": {"field": AGENCY_FIELD, "size": 50}},
        "statuses": {"terms": {"field": "alert.status", "size": 5}},
        "tactics": {"terms": {"field": "tags", "include": TACTIC_TAG, "size": 30}, "aggs": {"technique": techniques}},
        "untactical": {
            "filter": {"bool": {"must_not": {"regexp": {"tags": TACTIC_TAG}}}},
            "aggs": {"technique": techniques},
        },
    }
    response, bars = await asyncio.gather(
        client.search(
            index=index,
            query=query,
            size=0,
            aggs=aggs,
            track_total_hits=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        ),
        timeline(client, index, query, split_by="rule.level"),
    )
    results = response.get("aggregations") or {}
    tactics: dict[str | None, list[Count]] = {
        str(bucket["key"]): _counts(bucket["technique"]) for bucket in _buckets(results, "tactics")
    }
    untactical = _counts((results.get("untactical") or {}).get("technique"))
    if untactical:
        tactics[None] = untactical
    return Overview(
        total=int(response["hits"]["total"]["value"]),
        timeline=bars,
        rules=[
            Count(str(b["key"]), int(b["doc_count"]), _first_key(b["title"]["buckets"]) or str(b["key"]))
            for b in _buckets(results, "rules")
        ],
        hosts=_counts(results.get("hosts")),
        agencies=_counts(results.get("agencies")),
        statuses=_counts(results.get("statuses")),
        tactics=tactics,
    )


def _buckets(results: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list((results.get(name) or {}).get("buckets", []))


def _counts(aggregation: dict[str, Any] | None) -> list[Count]:
    return [Count(str(b["key"]), int(b["doc_count"])) for b in (aggregation or {}).get("buckets", [])]


def _first_key(buckets: Sequence[dict[str, Any]]) -> str:
    return str(buckets[0]["key"]) if buckets else ""
