"""What secmon has stored: its data streams' backing indices with their age and size."""

from __future__ import annotations

import re
from dataclasses import dataclass

from elasticsearch import AsyncElasticsearch

_GENERATION = re.compile(r"-(\d{6})$")


@dataclass(frozen=True, slots=True)
class StoredIndex:
    """One index: a data stream's backing index (``data_stream`` set) or a plain index."""

    name: str
    data_stream: str | None
    created: float  # seconds since the epoch
    docs: int

    @property
    def generation(self) -> int:
        match = _GENERATION.search(self.name)
        return int(match[1]) if match else 0


async def stored_indices(client: AsyncElasticsearch, patterns: list[str]) -> list[StoredIndex]:
    """Every index and backing index matching ``patterns``, oldest generation first."""
    info = await client.indices.get(
        index=patterns,
        allow_no_indices=True,
        ignore_unavailable=True,
        filter_path="*.data_stream,*.settings.index.creation_date",
    )
    if not info.body:
        return []
    # By pattern, not by name: a long list of backing index names would not fit in a request line.
    # A concrete name that matched nothing is left out, or stats would answer 404 for all.
    found = set(info.body) | {entry.get("data_stream") for entry in info.body.values()}
    targets = [pattern for pattern in patterns if "*" in pattern or pattern in found]
    stats = await client.indices.stats(index=targets, metric="docs", filter_path="indices.*.primaries.docs.count")
    counts = stats.body.get("indices", {})
    indices = [
        StoredIndex(
            name=name,
            data_stream=entry.get("data_stream"),
            created=int(entry["settings"]["index"]["creation_date"]) / 1000,
            docs=int(counts.get(name, {}).get("primaries", {}).get("docs", {}).get("count", 0)),
        )
        for name, entry in info.body.items()
    ]
    return sorted(indices, key=lambda index: (index.data_stream or index.name, index.generation))


def by_data_stream(indices: list[StoredIndex]) -> dict[str, list[StoredIndex]]:
    """Backing indices grouped by data stream, oldest first; the last of each is the write index."""
    streams: dict[str, list[StoredIndex]] = {}
    for index in indices:
        if index.data_stream:
            streams.setdefault(index.data_stream, []).append(index)
    return streams


def document_counts(indices: list[StoredIndex]) -> dict[str, int]:
    """Documents per data stream (summed over its backing indices) and per plain index."""
    counts: dict[str, int] = {}
    for index in indices:
        key = index.data_stream or index.name
        counts[key] = counts.get(key, 0) + index.docs
    return counts
