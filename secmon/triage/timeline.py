"""Documents over time, as bars: the histogram behind the dashboard's chart and the events search's.

The bar width is chosen from the first and last matching document, so that any time range gets a
readable number of bars. (``auto_date_histogram`` would do this in one request, but the minimal
distribution Elasticsearch ships for tests has no such aggregation; two small requests work on
every cluster.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch

MOST_BARS = 48
_MINUTE, _HOUR, _DAY = 60_000, 3_600_000, 86_400_000
WIDTHS = (  # (fixed_interval, milliseconds): widths a reader can count in
    *((f"{n}m", n * _MINUTE) for n in (1, 5, 10, 30)),
    *((f"{n}h", n * _HOUR) for n in (1, 3, 6, 12)),
    *((f"{n}d", n * _DAY) for n in (1, 7, 30, 365)),
)


@dataclass(frozen=True, slots=True)
class TimeBar:
    start: str  # ISO time of the bar's start
    counts: dict[str, int]  # per value of the field the bars are split by (one key, "", when not split)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Timeline:
    width: str  # a bar's width, e.g. "1h" ("" when nothing matched)
    bars: list[TimeBar]


async def timeline(
    client: AsyncElasticsearch, index: str, query: dict[str, Any], *, split_by: str | None = None
) -> Timeline:
    """The documents of ``index`` ``query`` selects, counted per bar of time (and per ``split_by`` value)."""
    options: dict[str, Any] = {"index": index, "query": query, "size": 0, "ignore_unavailable": True}
    options["allow_no_indices"] = True
    bounds = await client.search(
        **options, aggs={"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}
    )
    found = bounds.get("aggregations") or {}
    first, last = (found.get("first") or {}).get("value"), (found.get("last") or {}).get("value")
    if first is None or last is None:
        return Timeline("", [])
    width = bar_width(last - first)
    histogram: dict[str, Any] = {"date_histogram": {"field": "@timestamp", "fixed_interval": width}}
    if split_by:
        histogram["aggs"] = {"split": {"terms": {"field": split_by, "size": 10}}}
    response = await client.search(**options, aggs={"bars": histogram})
    buckets = ((response.get("aggregations") or {}).get("bars") or {}).get("buckets", [])
    return Timeline(
        width,
        [
            TimeBar(
                str(bucket["key_as_string"]),
                {str(b["key"]): int(b["doc_count"]) for b in bucket["split"]["buckets"]}
                if split_by
                else {"": int(bucket["doc_count"])},
            )
            for bucket in buckets
        ],
    )


def bar_width(span_ms: float) -> str:
    """The narrowest of :data:`WIDTHS` that draws ``span_ms`` in fewer than :data:`MOST_BARS` bars."""
    for name, width in WIDTHS:
        if span_ms / width < MOST_BARS:
            return name
    return WIDTHS[-1][0]
