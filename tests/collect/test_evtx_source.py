"""The evtx source on real EVTX files: every record once, growth, restarts, rewrites, damage, non-EVTX files."""

from __future__ import annotations

import logging
import secrets
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.sources.evtx import CHUNK_SIZE, FILE_HEADER_SIZE, EvtxSource, read_evtx
from secmon.collect.sources.settings import EvtxSourceSettings
from secmon.collect.transforms.normalize import normalize
from secmon.importer import read_evtx_records
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all

EVTX = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "evtx"
LOG_CLEARED = EVTX / "defense-evasion" / "DE_104_system_log_cleared.evtx"  # 1 record
FAKE_ACCOUNT = EVTX / "defense-evasion" / "DE_Fake_ComputerAccount_4720.evtx"  # 1 chunk
SECURITY_CLEARED = EVTX / "defense-evasion" / "DE_1102_security_log_cleared.evtx"  # 2 chunks: records 1..95, 96..112


def evtx_settings(folder: Path, agency: str) -> EvtxSourceSettings:
    return EvtxSourceSettings(include=[str(folder / "*.evtx")], agency=agency, poll_interval=0.05)  # type: ignore[call-arg]


def record_count(path: Path) -> int:
    return sum(1 for _ in read_evtx(path))


async def settle(source: EvtxSource) -> int:
    """Poll until the files have settled and been read (a file is read on the poll after it stops changing)."""
    return await source.poll() + await source.poll()


async def stored_events(es: AsyncElasticsearch, names: IndexNames, agency: str) -> list[dict[str, object]]:
    return await search_all(es, names.events_pattern, {"term": {"organization.id": agency}})


def first_chunk_only(source: Path) -> bytes:
    """``source`` as it was when only its first chunk was written: the header says one chunk."""
    data = source.read_bytes()
    header = bytearray(data[:FILE_HEADER_SIZE])
    last_in_first_chunk = struct.unpack_from("<Q", data, FILE_HEADER_SIZE + 32)[0]
    struct.pack_into("<Q", header, 16, 0)  # last chunk number
    struct.pack_into("<Q", header, 24, last_in_first_chunk + 1)  # next record id
    struct.pack_into("<H", header, 42, 1)  # chunk count
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))  # header checksum
    return bytes(header) + data[FILE_HEADER_SIZE : FILE_HEADER_SIZE + CHUNK_SIZE]


async def test_every_record_of_every_file_is_stored_once_as_import_makes_it(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    agency = f"evtx-{secrets.token_hex(3)}"
    folder = tmp_path / "drop"
    folder.mkdir()
    for source_file in (LOG_CLEARED, FAKE_ACCOUNT, SECURITY_CLEARED):
        shutil.copy(source_file, folder)
    expected = sum(record_count(path) for path in (LOG_CLEARED, FAKE_ACCOUNT, SECURITY_CLEARED))
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await source.poll() == 0  # first sight: wait for the files to settle
        assert await source.poll() == expected
        assert await source.poll() == 0
        await source.stop()
    stored = await stored_events(es, names, agency)
    assert len(stored) == expected
    by_file: dict[str, set[object]] = {}
    for event in stored:
        by_file.setdefault(event["log"]["file"]["path"], set()).add(event["winlog"]["record_id"])  # type: ignore[index]
    assert {Path(path).name: len(ids) for path, ids in by_file.items()} == {
        LOG_CLEARED.name: 1,
        FAKE_ACCOUNT.name: record_count(FAKE_ACCOUNT),
        SECURITY_CLEARED.name: 112,
    }
    # The same event `secmon import evtx` makes of the record, but for the agency and processing times.
    live = next(e for e in stored if Path(e["log"]["file"]["path"]).name == LOG_CLEARED.name)  # type: ignore[index]
    imported = normalize(next(read_evtx_records(folder / LOG_CLEARED.name, [])), "evtx")
    for event in (live, imported):
        event.pop("organization", None)
        event["event"].pop("ingested", None)  # type: ignore[attr-defined]
        event["event"].pop("created", None)  # type: ignore[attr-defined]
    assert live == imported


async def test_records_added_to_a_file_are_read_and_a_restart_sends_nothing_again(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    agency = f"evtx-{secrets.token_hex(3)}"
    folder = tmp_path / "drop"
    folder.mkdir()
    log_file = folder / "Security.evtx"
    log_file.write_bytes(first_chunk_only(SECURITY_CLEARED))
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(source) == 95
        with log_file.open("r+b") as handle:  # the writer adds a chunk to the same file (same inode)
            handle.write(SECURITY_CLEARED.read_bytes())
        assert await settle(source) == 112 - 95
        await source.stop()

        restarted = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(restarted) == 0
        assert await settle(restarted) == 0
        await restarted.stop()
    stored = await stored_events(es, names, agency)
    assert len(stored) == len({e["winlog"]["record_id"] for e in stored}) == 112  # type: ignore[index]
    assert pipeline.telemetry.value("secmon_component_errors_total", component="evtx", stage="decode") == 0


async def test_a_file_replaced_by_a_new_one_is_read_from_its_start(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    agency = f"evtx-{secrets.token_hex(3)}"
    folder = tmp_path / "drop"
    folder.mkdir()
    log_file = folder / "System.evtx"
    shutil.copy(LOG_CLEARED, log_file)
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(source) == 1
        replacement = folder / "System.evtx.new"
        shutil.copy(FAKE_ACCOUNT, replacement)
        replacement.rename(log_file)  # rotated: a new inode, whose record ids start at 1 again
        assert await settle(source) == record_count(FAKE_ACCOUNT)
        await source.stop()
    assert len(await stored_events(es, names, agency)) == 1 + record_count(FAKE_ACCOUNT)


async def test_a_file_that_is_not_evtx_is_reported_once_and_the_others_are_read(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agency = f"evtx-{secrets.token_hex(3)}"
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "notes.evtx").write_text("not an event log\n" * 500)
    (folder / "empty.evtx").touch()
    shutil.copy(LOG_CLEARED, folder)
    shutil.copy(FAKE_ACCOUNT, folder)
    caplog.set_level(logging.WARNING)
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(source) == 1 + record_count(FAKE_ACCOUNT)
        assert await settle(source) == 0
        await source.stop()
        # A restart does not report it again either.
        restarted = EvtxSource("evtx", evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(restarted) == 0
        await restarted.stop()
    assert len(await stored_events(es, names, agency)) == 1 + record_count(FAKE_ACCOUNT)
    skipped = [r.getMessage() for r in caplog.records if "not EVTX" in r.getMessage()]
    assert len([m for m in skipped if str(folder / "notes.evtx") in m]) == 1, skipped
    assert len([m for m in skipped if str(folder / "empty.evtx") in m]) == 1, skipped
    assert pipeline.telemetry.value("secmon_component_errors_total", component="evtx", stage="read") == 2


async def test_damage_is_dead_lettered_once_and_the_rest_is_stored(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    agency = f"evtx-{secrets.token_hex(3)}"
    component = f"evtx-{secrets.token_hex(3)}"
    folder = tmp_path / "drop"
    folder.mkdir()
    # Cut inside the second chunk: the parser drops it silently, the reader reports it.
    (folder / "cut.evtx").write_bytes(SECURITY_CLEARED.read_bytes()[: FILE_HEADER_SIZE + CHUNK_SIZE + 20_000])
    failures: list[object] = []
    readable = sum(1 for _ in read_evtx(folder / "cut.evtx", on_failure=failures.append))
    assert failures and readable < 112
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = EvtxSource(component, evtx_settings(folder, agency), pipeline, tmp_path / "state")
        assert await settle(source) == readable
        (folder / "cut.evtx").touch()  # read again: nothing new, and the damage is not reported twice
        assert await settle(source) == 0
        await source.stop()
    assert len(await stored_events(es, names, agency)) == readable
    dead = await search_all(es, names.deadletter, {"term": {"deadletter.component": component}})
    assert len(dead) == len(failures)
    reasons = [d["deadletter"]["reason"] for d in dead]  # type: ignore[index]
    assert all(str(folder / "cut.evtx") in reason for reason in reasons), reasons
    assert any("truncated" in reason for reason in reasons), reasons
