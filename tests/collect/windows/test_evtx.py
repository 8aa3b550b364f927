"""read_evtx on the real EVTX-ATTACK-SAMPLES files, and on copies of them damaged on purpose."""

from __future__ import annotations

import logging
import shutil
import struct
from collections import Counter
from pathlib import Path

import pytest

from secmon.collect.sources.evtx import CHUNK_SIZE, FILE_HEADER_SIZE, EvtxReadFailure, EvtxRecord, read_evtx
from secmon.errors import IngestError

DATASET = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "evtx"
FILES = sorted(DATASET.rglob("*.evtx"))
# 12 chunks, records 1..530: chunk 3 holds records 143..191, chunk 5 holds 241..288.
MULTI_CHUNK = DATASET / "privilege-escalation" / "Sysmon_UACME_64.evtx"

RECORDS_PER_CHANNEL = {
    "Microsoft-Windows-Sysmon/Operational": 1701,
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational": 794,
    None: 415,  # an ETW trace (Microsoft-Windows-RPC) saved as .evtx: its records name no channel
    "Security": 407,
    "Application": 393,
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational": 228,
    "Microsoft-Windows-Windows Defender/Operational": 11,
    "System": 11,
    "Microsoft-Windows-PowerShell/Operational": 5,
    "Microsoft-Windows-Bits-Client/Operational": 5,
    "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant": 4,
    "Windows PowerShell": 3,
    "Microsoft-Windows-WinRM/Operational": 1,
}


def read_all(path: Path) -> tuple[list[EvtxRecord], list[EvtxReadFailure]]:
    failures: list[EvtxReadFailure] = []
    return list(read_evtx(path, on_failure=failures.append)), failures


def chunk_offset(number: int) -> int:
    return FILE_HEADER_SIZE + number * CHUNK_SIZE


def declared_record_ids(data: bytes | bytearray, number: int) -> tuple[int, int]:
    """The first and last record id the header of chunk ``number`` declares."""
    first, last = struct.unpack_from("<QQ", data, chunk_offset(number) + 24)
    return first, last


def record_offsets(data: bytes | bytearray, number: int) -> dict[int, int]:
    """Record id -> byte offset of each record in chunk ``number`` (records start 512 bytes in)."""
    offsets = {}
    offset = chunk_offset(number) + 512
    while data[offset : offset + 4] == b"\x2a\x2a\x00\x00":
        size, record_id = struct.unpack_from("<IQ", data, offset + 4)
        offsets[record_id] = offset
        offset += size
    return offsets


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, bytearray]:
    """A copy of the 12-chunk file to damage, and its bytes."""
    copy = tmp_path / MULTI_CHUNK.name
    shutil.copyfile(MULTI_CHUNK, copy)
    data = bytearray(copy.read_bytes())
    assert declared_record_ids(data, 3) == (143, 191)
    assert declared_record_ids(data, 5) == (241, 288)
    return copy, data


def test_the_dataset_is_all_there() -> None:
    assert len(FILES) == 172


def test_every_file_reads_whole_and_without_failures() -> None:
    channels: Counter[str | None] = Counter()
    for path in FILES:
        records, failures = read_all(path)
        assert failures == [], path
        assert records, path
        # Record ids (the file's own numbering, 1..n in these exported logs) are each read once.
        assert [record.record_id for record in records] == list(range(1, len(records) + 1)), path
        for record in records:
            assert record.path == path
            assert isinstance(record.event["System"], dict)
            channels[record.event["System"].get("Channel")] += 1
    assert sum(channels.values()) == 3978
    assert dict(channels) == RECORDS_PER_CHANNEL


def test_record_id_is_the_files_own_not_the_event_record_id() -> None:
    # Logs exported with "Save As" number their records from 1 again; System/EventRecordID keeps
    # the number the source log gave them. A replay key must use the former.
    first = next(read_evtx(DATASET / "command-and-control" / "DE_RDP_Tunneling_4624.evtx"))
    assert first.record_id == 1
    assert first.event["System"]["EventRecordID"] == 5278


def test_a_truncated_file_yields_what_precedes_the_cut_and_reports_the_rest(damaged: tuple[Path, bytearray]) -> None:
    path, data = damaged
    cut = chunk_offset(5) + 30_000  # inside chunk 5
    path.write_bytes(data[:cut])

    records, failures = read_all(path)

    assert [record.record_id for record in records] == list(range(1, 241))
    assert failures == [
        EvtxReadFailure(
            path,
            f"the file is truncated: its header declares 12 chunks ({chunk_offset(12)} bytes) but it has {cut} bytes",
            offset=cut,
        ),
        EvtxReadFailure(path, "records 289..530 were in chunks beyond the end of the file", record_id=289, offset=cut),
        EvtxReadFailure(
            path,
            f"records 241..288 are declared by the chunk at byte {chunk_offset(5)} but the parser did not return"
            " them (a damaged record or a truncated chunk)",
            record_id=241,
            offset=chunk_offset(5),
        ),
    ]


def test_a_broken_chunk_header_loses_that_chunk_only(damaged: tuple[Path, bytearray]) -> None:
    path, data = damaged
    data[chunk_offset(3) : chunk_offset(3) + 8] = b"garbage!"
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == [*range(1, 143), *range(192, 531)]
    assert len(failures) == 2
    assert failures[0].offset == chunk_offset(3)
    assert "Failed to parse chunk number 3" in failures[0].reason
    # Which records that cost, from the chunks on either side.
    assert failures[1] == EvtxReadFailure(path, "records 143..191 are in no chunk that could be read", record_id=143)


def test_a_record_the_parser_cannot_decode_is_reported_by_id(damaged: tuple[Path, bytearray]) -> None:
    path, data = damaged
    offset = record_offsets(data, 3)[145]
    data[offset + 24 : offset + 60] = b"\xff" * 36  # the record's BinXML, just after its 24-byte header
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == [i for i in range(1, 531) if i != 145]
    assert len(failures) == 1
    assert failures[0].record_id == 145
    assert "record number 145" in failures[0].reason


def test_records_the_parser_drops_silently_are_reported(damaged: tuple[Path, bytearray]) -> None:
    # A broken record header ends the parser's walk through the chunk without an error.
    path, data = damaged
    offset = record_offsets(data, 3)[145]
    data[offset : offset + 4] = b"\x00\x00\x00\x00"
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == [*range(1, 145), *range(192, 531)]
    assert failures == [
        EvtxReadFailure(
            path,
            f"records 145..191 are declared by the chunk at byte {chunk_offset(3)} but the parser did not return"
            " them (a damaged record or a truncated chunk)",
            record_id=145,
            offset=chunk_offset(3),
        )
    ]


def test_failures_are_logged_when_nobody_listens(
    damaged: tuple[Path, bytearray], caplog: pytest.LogCaptureFixture
) -> None:
    path, data = damaged
    path.write_bytes(data[: chunk_offset(11)])  # the last chunk (records 528..530) cut off

    with caplog.at_level(logging.WARNING, logger="secmon.collect.sources.evtx"):
        records = list(read_evtx(path))

    assert len(records) == 527
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert all(message.startswith("Part of an EVTX file could not be read.") for message in messages)
    assert "records 528..530 were in chunks beyond the end of the file" in messages[1]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello world\n" * 1000, "not an EVTX file"),
        (b"", "not an EVTX file"),
        (b"ElfFile\x00", "not an EVTX file"),  # a header cut short
    ],
    ids=["text", "empty", "short-header"],
)
def test_a_file_that_is_not_evtx_raises_ingest_error_naming_it(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "notes.evtx"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=reason) as raised:
        read_evtx(path)  # raised at the call, before any iteration
    assert str(path) in str(raised.value)


def test_a_file_that_cannot_be_opened_raises_ingest_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.evtx"
    with pytest.raises(IngestError, match="cannot be read") as raised:
        read_evtx(missing)
    assert str(missing) in str(raised.value)
    with pytest.raises(IngestError, match="cannot be read"):
        read_evtx(tmp_path)  # a directory


def test_a_chunk_header_declaring_every_record_id_costs_no_memory_and_is_reported(
    damaged: tuple[Path, bytearray],
) -> None:
    # The parser's error repeats the header's range, 1..2**64-1: noting each id of it took all memory.
    path, data = damaged
    struct.pack_into("<QQ", data, chunk_offset(3) + 8, 1, 2**64 - 1)  # record numbers
    struct.pack_into("<QQ", data, chunk_offset(3) + 24, 1, 2**64 - 1)  # record ids
    data[chunk_offset(3) + 128 : chunk_offset(3) + 384] = b"\xff" * 256  # its string table: the parser fails
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == [*range(1, 143), *range(192, 531)]
    assert len(failures) == 2
    assert "record IDs 1..18446744073709551615" in failures[0].reason
    assert failures[1] == EvtxReadFailure(
        path,
        f"records 143..191 are in no chunk that could be read (damaged chunk headers at byte {chunk_offset(3)})",
        record_id=143,
    )


def test_records_of_a_chunk_the_parser_skips_for_its_damaged_header_are_reported(
    damaged: tuple[Path, bytearray],
) -> None:
    # The parser skips a chunk whose header says its records end where they begin, without a word.
    path, data = damaged
    struct.pack_into("<QQ", data, chunk_offset(3) + 24, 143, 0)  # record ids: 143..0
    struct.pack_into("<I", data, chunk_offset(3) + 48, 0)  # where its free space begins: no record
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == [*range(1, 143), *range(192, 531)]
    assert failures == [
        EvtxReadFailure(
            path,
            f"records 143..191 are in no chunk that could be read (damaged chunk headers at byte {chunk_offset(3)})",
            record_id=143,
        )
    ]


def test_a_chunk_whose_damaged_header_the_parser_reads_past_costs_nothing(damaged: tuple[Path, bytearray]) -> None:
    path, data = damaged
    struct.pack_into("<Q", data, chunk_offset(3) + 32, 142)  # its last record id, before its first
    path.write_bytes(data)

    records, failures = read_all(path)

    assert [record.record_id for record in records] == list(range(1, 531))
    assert failures == []


def test_records_the_file_header_declares_beyond_every_readable_chunk_are_reported(tmp_path: Path) -> None:
    # A one-chunk file whose only chunk the parser skips: the file header still says how many records it held.
    path = tmp_path / "one-chunk.evtx"
    data = bytearray((DATASET / "defense-evasion" / "DE_Fake_ComputerAccount_4720.evtx").read_bytes())
    next_record_id = struct.unpack_from("<Q", data, 24)[0]
    struct.pack_into("<QQ", data, FILE_HEADER_SIZE + 24, 1, 0)  # record ids: 1..0
    struct.pack_into("<I", data, FILE_HEADER_SIZE + 48, 0)  # where its free space begins: no record
    path.write_bytes(data)

    records, failures = read_all(path)

    assert records == []
    assert [failure.reason for failure in failures] == [
        f"records 1..{next_record_id - 1}, which the file header declares, are in no chunk that could be read"
        f" (damaged chunk headers at byte {FILE_HEADER_SIZE})"
    ]


def test_a_file_in_which_no_chunk_can_be_found_says_so(tmp_path: Path) -> None:
    # File header and chunk header both damaged: nothing says what the file held, but it held something.
    path = tmp_path / "one-chunk.evtx"
    data = bytearray((DATASET / "defense-evasion" / "DE_Fake_ComputerAccount_4720.evtx").read_bytes())
    struct.pack_into("<QQQ", data, 8, 0, 0, 0)  # the file header's chunk numbers and next record id
    struct.pack_into("<H", data, 42, 0)  # and its chunk count
    data[FILE_HEADER_SIZE : FILE_HEADER_SIZE + 8] = b"\x00" * 8  # the chunk's magic
    path.write_bytes(data[:20_000])

    records, failures = read_all(path)

    assert records == []
    assert [failure.reason for failure in failures] == [
        "the file header is damaged: its checksum does not match",
        f"no chunk could be found in the {20_000 - FILE_HEADER_SIZE} bytes after the file header",
    ]


def test_a_file_header_that_does_not_match_its_checksum_is_reported(damaged: tuple[Path, bytearray]) -> None:
    path, data = damaged
    data[100] ^= 0xFF  # unused header space, under the checksum
    path.write_bytes(data)

    records, failures = read_all(path)

    assert len(records) == 530
    assert failures == [EvtxReadFailure(path, "the file header is damaged: its checksum does not match", offset=0)]
