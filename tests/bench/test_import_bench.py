"""``secmon bench import`` against the real test node: each row stores every record once, and leaves nothing behind.

No wall-clock thresholds: a loaded machine makes a run slower, never wrong.
"""

from __future__ import annotations

from pathlib import Path

import evtx
from elasticsearch import AsyncElasticsearch

from secmon.bench.imports import bench_import
from secmon.config import ElasticsearchSettings, Settings
from secmon.store import IndexNames
from tests.support.datasets import DATASETS

FILES = sorted((DATASETS / "evtx" / "credential-access").glob("*.evtx"))[:4]


async def test_every_row_stores_the_records_the_parser_reads_and_cleans_up(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    prefix = f"{names.prefix}-benchimp"
    settings = Settings(elasticsearch=es_settings.model_copy(update={"index_prefix": prefix}), state_dir=tmp_path)  # type: ignore[call-arg]
    records = sum(1 for path in FILES for _ in evtx.PyEvtxParser(str(path)).records_json())  # the parser's own count

    rows = await bench_import(settings, FILES, [1, 2])

    assert [row.name for row in rows[:2]] == ["secmon import evtx --jobs 1", "secmon import evtx --jobs 2"]
    assert all((row.events, row.stored) == (records, records) for row in rows) and records > 0
    assert rows[0].alerts == rows[1].alerts  # the same alerts, whatever the workers
    assert rows[2].alerts is None  # the raw peer does not detect
    assert all(row.seconds > 0 and row.cpu_seconds > 0 for row in rows)
    resolved = await es.indices.resolve_index(name=f"{prefix}-benchimport-*", expand_wildcards="all")
    assert resolved["indices"] == [] and resolved["data_streams"] == []
