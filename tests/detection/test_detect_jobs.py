"""``secmon detect --jobs``: several processes find what one finds, in the same order, damage reports included.

The reference is the single-process hunt (``--jobs 1``, :func:`secmon.offline.hunt`), which the
SigmaHQ regression counts and the differential tests check against peers; these tests hold the
parallel hunt to it on the shared EVTX set, on files cut into parts, on damaged files and on
correlations whose windows span files.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secmon.collect.sources.evtx import CHUNK_SIZE, FILE_HEADER_SIZE
from secmon.config import SHIPPED_RULES_DIR
from secmon.detection.detector import Detector, load_detector
from secmon.errors import IngestError
from secmon.offline import HuntStats, hunt
from secmon.offline.parallel import PART_BYTES, DetectorSource, hunt_parallel

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
EVTX = DATASETS / "evtx"
SIGMA_WINDOWS = DATASETS / "sigma" / "rules" / "windows"
SSH_LOG = DATASETS / "logs" / "loghub_OpenSSH_2k.log"
# 12 chunks, records 1..530: chunk 3 holds records 143..191.
MULTI_CHUNK = EVTX / "privilege-escalation" / "Sysmon_UACME_64.evtx"


@pytest.fixture(scope="module")
def windows_detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    return load_detector([SIGMA_WINDOWS], cache_dir=tmp_path_factory.mktemp("rule-cache"))


Findings = list[dict[str, Any]]


def both(
    detector: Detector, rules: Path, paths: list[Path], part_bytes: int = PART_BYTES
) -> tuple[Findings, Findings, list[str]]:
    """The findings of one process and of two over ``paths``, and the read failures (the same in both)."""
    one, two = HuntStats(), HuntStats()
    single = [finding.as_json() for finding in hunt(detector, paths, one)]
    # A fresh detector: correlation windows are state, and the parallel hunt counts them in the parent.
    fresh = load_detector([rules], cache_dir=None)
    source = DetectorSource((rules,), None)
    parallel = [finding.as_json() for finding in hunt_parallel(fresh, paths, 2, source, two, part_bytes=part_bytes)]
    assert (one.files, one.events, one.findings) == (two.files, two.events, two.findings)
    assert one.read_failures == two.read_failures
    return single, parallel, one.read_failures


def test_two_processes_print_what_one_prints_on_the_shared_evtx_set(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    outputs = []
    for jobs in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-m", "secmon", "detect", "--jobs", jobs, "-r", str(SIGMA_WINDOWS), str(EVTX)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"{jobs} process" in result.stderr
        outputs.append(result.stdout)
    findings = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(findings) > 400  # the SigmaHQ Windows rules find hundreds of matches in these attack samples
    assert len({finding["file"] for finding in findings}) > 50
    assert outputs[1] == outputs[0]  # byte for byte: same findings, same order


def test_files_cut_into_parts_of_one_chunk_give_the_same_findings(windows_detector: Detector) -> None:
    single, parallel, _ = both(windows_detector, SIGMA_WINDOWS, [EVTX], part_bytes=CHUNK_SIZE)
    assert len(single) > 400
    assert parallel == single


def test_damaged_files_read_in_parts_report_what_one_reading_reports(
    windows_detector: Detector, tmp_path: Path
) -> None:
    data = MULTI_CHUNK.read_bytes()
    chunk_3 = FILE_HEADER_SIZE + 3 * CHUNK_SIZE

    def damaged(name: str, change: Callable[[bytearray], object]) -> None:
        copy = bytearray(data)
        changed = change(copy)
        (tmp_path / f"{name}.evtx").write_bytes(changed if isinstance(changed, bytearray) else copy)

    damaged("a-truncated", lambda d: d[: FILE_HEADER_SIZE + 5 * CHUNK_SIZE + 30_000])
    damaged("b-chunk-header", lambda d: d.__setitem__(slice(chunk_3, chunk_3 + 8), b"garbage!"))
    damaged("c-record-ids", lambda d: struct.pack_into("<QQ", d, chunk_3 + 24, 143, 0))
    damaged("d-file-header", lambda d: d.__setitem__(100, d[100] ^ 0xFF))
    shutil.copyfile(MULTI_CHUNK, tmp_path / "e-intact.evtx")

    single, parallel, failures = both(windows_detector, SIGMA_WINDOWS, [tmp_path], part_bytes=CHUNK_SIZE)

    assert parallel == single
    reasons = " | ".join(failures)
    assert "the file is truncated" in reasons
    assert "Failed to parse chunk number 3" in reasons  # the file's chunk number, not the part's
    assert "records 143..191 are in no chunk that could be read" in reasons
    assert "the file header is damaged" in reasons


def test_correlation_windows_span_the_files_workers_share(tmp_path: Path) -> None:
    # One sshd log cut into five: a brute force counted across the cut is found only if the
    # parent counts every worker's matches in file order.
    lines = SSH_LOG.read_bytes().splitlines(keepends=True)
    step = len(lines) // 5 + 1
    for number, start in enumerate(range(0, len(lines), step)):
        (tmp_path / f"part-{number}.log").write_bytes(b"".join(lines[start : start + step]))
    detector = load_detector([SHIPPED_RULES_DIR], cache_dir=None)

    single, parallel, _ = both(detector, SHIPPED_RULES_DIR, [tmp_path])

    assert parallel == single
    spanning = [
        finding
        for finding in single
        if len({event.rsplit(":", 1)[0] for event in finding.get("correlated_events", [])}) > 1
    ]
    assert spanning, "no correlation whose events are in two of the files"


def test_windows_decided_when_they_close_close_at_the_event_one_process_closes_them_at(tmp_path: Path) -> None:
    # "Fewer than 3 failures in a minute" is decided when the window closes: when any later event
    # (matching or not) is a minute of lateness past its end. The parent sees only what matched
    # unless the workers also send the events that move the clock.
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(SHIPPED_RULES_DIR / "linux" / "ssh_failed_login.yml", rules)
    (rules / "slow.yml").write_text(
        "title: Few SSH failures\nid: 5d1d4a1e-3c1f-4f3a-9b59-1c1e0c9b7a01\nstatus: test\nlevel: low\n"
        "correlation:\n  type: event_count\n  rules: [ce69d572-59aa-4839-ae0f-20366e0fa924]\n"
        "  group-by: [source.ip]\n  timespan: 1m\n  condition:\n    lt: 3\n"
    )
    lines = SSH_LOG.read_bytes().splitlines(keepends=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    step = len(lines) // 5 + 1
    for number, start in enumerate(range(0, len(lines), step)):
        (logs / f"part-{number}.log").write_bytes(b"".join(lines[start : start + step]))

    single, parallel, _ = both(load_detector([rules], cache_dir=None), rules, [logs])

    closed = [finding for finding in single if finding["title"] == "Few SSH failures"]
    assert len(closed) > 10
    assert parallel == single


def test_a_file_that_is_not_evtx_stops_the_hunt_naming_it(windows_detector: Detector, tmp_path: Path) -> None:
    (tmp_path / "fake.evtx").write_bytes(b"not an event log" * 10_000)
    source = DetectorSource((SIGMA_WINDOWS,), None)
    with pytest.raises(IngestError, match=r"fake\.evtx: not an EVTX file"):
        list(hunt_parallel(windows_detector, [tmp_path], 2, source, part_bytes=CHUNK_SIZE))
    with pytest.raises(IngestError, match=r"fake\.evtx: not an EVTX file"):
        list(hunt(windows_detector, [tmp_path]))
