"""``secmon import --jobs``: worker processes store what the live pipeline stores, under the same ids and alerts.

The reference is the pipeline every source submits to (``import_records``, ``Pipeline.submit``),
one process reading the files in order; the SigmaHQ regression and differential tests hold its
matching to peers. The units here are cut small so that log files are split mid-file and EVTX
files into parts of a few chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.bench.runs import delete_run, plain_event_indices
from secmon.config import ElasticsearchSettings, Settings
from secmon.events import PARSE_FAILURE_TAG
from secmon.importer import ImportSummary, import_context, import_records, read_evtx_records, read_lines
from secmon.importer.parallel import evtx_units, import_units, log_units
from secmon.store import IndexNames
from tests.support.datasets import DATASETS
from tests.support.import_cli import run_import

LOGS = sorted((DATASETS / "logs").glob("*.log"))
EVTX = sorted((DATASETS / "evtx").rglob("*.evtx"))


def _auditd(path: Path) -> Path:
    """Program starts as auditd logs them, SYSCALL then EXECVE: cut between them, a join is lost."""
    lines = []
    for serial in range(1, 200):
        stamp = f"msg=audit(1733900000.{serial:03d}:{serial})"
        lines += [
            f"type=SYSCALL {stamp}: arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={4000 + serial} "
            f'auid=1000 uid=0 gid=0 euid=0 tty=pts0 ses=1 comm="base64" exe="/usr/bin/base64" key=(null)',
            f'type=EXECVE {stamp}: argc=2 a0="base64" a1="-d"',
            f'type=CWD {stamp}: cwd="/tmp"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


Prefixed = Callable[[str], Awaitable[Settings]]


@pytest.fixture
async def prefixed(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path: Path
) -> AsyncIterator[Prefixed]:
    """Settings with an index prefix of the test's own, whose indices are deleted after it.

    Plain indices, not data streams: this distribution cannot delete data streams, and a node
    holds a thousand shards.
    """
    made: list[str] = []

    async def settings(name: str) -> Settings:
        prefix = f"{es_settings.index_prefix}-jobs-{name}"
        made.append(prefix)
        chosen = Settings(  # type: ignore[call-arg]
            elasticsearch=es_settings.model_copy(update={"index_prefix": prefix}), state_dir=tmp_path / name
        )
        await plain_event_indices(es, chosen, IndexNames(prefix))
        return chosen

    yield settings
    for prefix in made:
        await delete_run(es, f"{prefix}-*")


async def _stored(es: AsyncElasticsearch, names: IndexNames, pattern: str) -> dict[str, dict[str, Any]]:
    """Every document under ``pattern`` by id, without what differs from one import to the next (times, names)."""
    await es.indices.refresh(index=pattern)
    found: dict[str, dict[str, Any]] = {}
    async for hit in async_scan(es, index=pattern, query={"query": {"match_all": {}}}):
        source = hit["_source"]
        if "indices" in source.get("event", {}):  # an alert's events' indices, under the import's prefix
            source["event"]["indices"] = [name.removeprefix(names.prefix) for name in source["event"]["indices"]]
        for name in ("ingested", "created"):  # when secmon read it (created: of records that do not say)
            source.get("event", {}).pop(name, None)
        if PARSE_FAILURE_TAG in source.get("tags", ()):
            source.pop("@timestamp")  # the time it was read: its text has none secmon understands
        found[hit["_id"]] = source
    return found


@pytest.mark.parametrize("jobs", [1, 2])
async def test_workers_store_the_documents_and_alerts_of_one_pipeline_under_the_same_ids(
    es: AsyncElasticsearch, prefixed: Prefixed, tmp_path: Path, jobs: int
) -> None:
    logs = LOGS
    one, workers = await prefixed(f"one{jobs}"), await prefixed(f"workers{jobs}")

    log_context, evtx_context = (
        import_context("import", "auto", "agency-1"),
        import_context("import-evtx", "evtx", None),
    )
    reference = [
        await import_records(
            one, (r for path in logs for r in read_lines(path)), component="import", fmt="auto", agency="agency-1"
        ),
        await import_records(
            one,
            (r for path in EVTX for r in read_evtx_records(path, [])),
            component="import-evtx",
            fmt="evtx",
            agency=None,
        ),
    ]
    failures: list[str] = []
    parallel = [
        await import_units(workers, log_units(logs, range_bytes=64 * 1024), log_context, jobs, failures=failures),
        await import_units(workers, evtx_units(EVTX, part_bytes=4 * 65536), evtx_context, jobs, failures=failures),
    ]
    assert failures == []
    lines = sum(1 for path in logs for line in path.read_bytes().splitlines() if line.strip())
    assert [summary.read for summary in parallel] == [lines, 3978]  # every line, every record of the set
    assert [_counts(summary) for summary in parallel] == [_counts(summary) for summary in reference]
    assert parallel[0].alerts > 0  # the shipped SSH brute-force correlations fire on the OpenSSH log

    names_one, names_workers = (
        IndexNames(one.elasticsearch.index_prefix),
        IndexNames(workers.elasticsearch.index_prefix),
    )
    events = await _stored(es, names_workers, names_workers.events_pattern)
    assert len(events) == lines + 3978
    assert events == await _stored(es, names_one, names_one.events_pattern)
    alerts = await _stored(es, names_workers, names_workers.alerts)
    assert alerts == await _stored(es, names_one, names_one.alerts)


def _counts(summary: ImportSummary) -> tuple[int, ...]:
    return (summary.read, summary.parse_failures, summary.stored, summary.duplicates, summary.failed, summary.alerts)


async def test_a_log_cut_between_a_syscall_and_its_execve_is_joined_as_one_reader_joins_it(
    es: AsyncElasticsearch, prefixed: Prefixed, tmp_path: Path
) -> None:
    audit = _auditd(tmp_path / "audit.log")
    units = list(log_units([audit], range_bytes=1000))
    data = audit.read_bytes()
    cut = [unit.ranges[0].start for unit in units if data[unit.ranges[0].start :].startswith(b"type=EXECVE")]
    assert len(cut) > 10  # units that start with an EXECVE whose SYSCALL the unit before has
    one, workers = await prefixed("audit-one"), await prefixed("audit-workers")
    await import_records(one, read_lines(audit), component="import", fmt="auto", agency=None)
    await import_units(workers, units, import_context("import", "auto", None), 2, failures=[])
    names_one, names_workers = (
        IndexNames(one.elasticsearch.index_prefix),
        IndexNames(workers.elasticsearch.index_prefix),
    )
    events = await _stored(es, names_workers, names_workers.events_pattern)
    starts = [e for e in events.values() if e.get("process", {}).get("args") == ["base64", "-d"]]
    assert len(starts) == 199  # every EXECVE with its SYSCALL's executable, wherever the file was cut
    assert all(start["process"]["executable"] == "/usr/bin/base64" for start in starts)
    assert events == await _stored(es, names_one, names_one.events_pattern)


async def test_a_second_import_with_workers_stores_nothing_twice(
    es: AsyncElasticsearch, prefixed: Prefixed, tmp_path: Path
) -> None:
    settings = await prefixed("again")
    context = import_context("import", "auto", None)
    first = await import_records(
        settings, (r for p in LOGS for r in read_lines(p)), component="import", fmt="auto", agency=None
    )
    again = await import_units(settings, log_units(LOGS, range_bytes=256 * 1024), context, 2, failures=[])
    assert first.stored == again.read == again.duplicates > 0
    assert (again.stored, again.alerts) == (0, 0)


async def test_unreadable_files_are_said_and_the_others_imported(prefixed: Prefixed, tmp_path: Path) -> None:
    settings = await prefixed("unreadable")
    not_evtx = tmp_path / "notes.evtx"
    not_evtx.write_text("not an event log\n")
    big_not_evtx = tmp_path / "big.evtx"
    big_not_evtx.write_bytes(b"x" * (5 * 65536))  # planned in parts: refused when planned
    failures: list[str] = []
    files = [not_evtx, EVTX[0], big_not_evtx]
    summary = await import_units(
        settings,
        evtx_units(files, part_bytes=4 * 65536),
        import_context("import-evtx", "evtx", None),
        2,
        failures=failures,
    )
    assert summary.read == summary.stored == sum(1 for _ in read_evtx_records(EVTX[0], [])) > 0
    assert len(failures) == 2 and "notes.evtx" in failures[0] and "big.evtx" in failures[1]


def test_log_units_cover_every_line_once_each_starting_at_a_line(tmp_path: Path) -> None:
    path = tmp_path / "long-lines.log"
    path.write_bytes(b"".join(b"x" * (n % 700) + b"\n" for n in range(2000)) + b"no newline at the end")
    units = list(log_units([path, LOGS[0]], range_bytes=4096))
    ranges = [part for unit in units for part in unit.ranges]
    assert next(part.start for part in ranges if part.path == path) == 0
    data = path.read_bytes()
    assert all(part.start == 0 or data[part.start - 1 : part.start] == b"\n" for part in ranges if part.path == path)
    offsets = [record.key for part in ranges for record in read_lines(part.path, part.start, part.end)]
    assert offsets == [record.key for p in (path, LOGS[0]) for record in read_lines(p)]
    assert all(unit.prime is not None for unit in units[1:])


async def test_the_cli_imports_with_workers(prefixed: Prefixed, tmp_path: Path) -> None:
    settings = await prefixed("cli")
    config = tmp_path / "secmon.yml"
    es = settings.elasticsearch
    url = es.url or f"http://{es.local.host}:{es.local.port}"  # the test node: configured, or the local one
    config.write_text(f"elasticsearch:\n  url: {url}\n  index_prefix: {es.index_prefix}\nstate_dir: {tmp_path}\n")
    row, output = await asyncio.to_thread(run_import, config, "evtx", "--jobs", "2", str(DATASETS / "evtx"))
    assert row[:3] == [3978, 0, 3978]
    assert "unreadable" not in output
