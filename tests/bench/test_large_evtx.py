"""The large EVTX file ``secmon bench detect --one-file-mb`` hunts: real chunks, one log, readable by the parser."""

from __future__ import annotations

import json
from pathlib import Path

import evtx

from secmon.bench.large_evtx import write_large_evtx
from secmon.collect.sources.evtx import CHUNK_SIZE, FILE_HEADER_SIZE, EvtxReadFailure, read_evtx
from tests.support.datasets import DATASETS

SOURCES = sorted((DATASETS / "evtx").rglob("*.evtx"))


def event_record_ids(path: Path) -> list[int]:
    return [
        json.loads(record["data"])["Event"]["System"]["EventRecordID"]
        for record in evtx.PyEvtxParser(str(path)).records_json()
    ]


def test_the_file_is_one_log_of_the_sources_records_read_whole(tmp_path: Path) -> None:
    large = tmp_path / "large.evtx"
    written = write_large_evtx(SOURCES, large, 8 * 1024 * 1024)

    assert large.stat().st_size == FILE_HEADER_SIZE + (8 * 1024 * 1024 - FILE_HEADER_SIZE) // CHUNK_SIZE * CHUNK_SIZE
    # The parser itself (not secmon's reader) numbers the records 1..n, in order.
    assert [r["event_record_id"] for r in evtx.PyEvtxParser(str(large)).records_json()] == list(range(1, written + 1))
    # The events are the sources', in their order, repeated as far as the size goes.
    source_ids = [i for source in SOURCES for i in event_record_ids(source)]
    assert event_record_ids(large) == (source_ids * (written // len(source_ids) + 1))[:written]
    # And secmon's reader, which checks the file and chunk headers, finds nothing wrong.
    failures: list[EvtxReadFailure] = []
    assert sum(1 for _ in read_evtx(large, on_failure=failures.append)) == written
    assert failures == []
