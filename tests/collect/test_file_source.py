"""The file source on real files: growth, rotation, truncation, restarts, multi-line, crashes."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from elasticsearch import AsyncElasticsearch

from secmon.collect.sources.file import FileSource
from secmon.collect.sources.settings import FileSourceSettings
from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all
from tests.support.wait import until_at_least

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
OPENSSH = DATASETS / "logs" / "loghub_OpenSSH_2k.log"


def file_settings(pattern: Path, dataset: str, **extra: object) -> FileSourceSettings:
    return FileSourceSettings(  # type: ignore[call-arg]
        include=[str(pattern)], dataset=dataset, start_at="beginning", poll_interval=0.05, **extra
    )


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.writelines(line + "\n" for line in lines)


async def originals(es: AsyncElasticsearch, names: IndexNames, dataset: str) -> list[str]:
    return sorted(e["event"]["original"] for e in await search_all(es, names.events(dataset)))  # type: ignore[index]


async def test_a_file_is_read_whole_then_followed_as_it_grows(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_grow_{secrets.token_hex(3)}"
    log_file = tmp_path / "auth.log"
    log_file.write_bytes(OPENSSH.read_bytes().rstrip(b"\n") + b"\n")  # the original lacks a final newline
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", file_settings(tmp_path / "*.log", dataset), pipeline, tmp_path / "state")
        await source.poll()
        append(log_file, ["Dec 10 11:00:00 LabSZ sshd[1]: new line one", "Dec 10 11:00:01 LabSZ sshd[2]: new line two"])
        await source.poll()
        await source.stop()
    lines = OPENSSH.read_text().splitlines()
    stored = await search_all(es, names.events(dataset))
    assert len(stored) == len(lines) + 2
    by_offset = {e["log"]["offset"]: e for e in stored}  # type: ignore[index]
    assert by_offset[0]["event"]["original"] == lines[0]  # type: ignore[index]
    second_line_offset = OPENSSH.read_bytes().index(b"\n") + 1
    assert by_offset[second_line_offset]["event"]["original"] == lines[1]  # type: ignore[index]
    assert {e["log"]["file"]["path"] for e in stored} == {str(log_file)}  # type: ignore[index]


async def test_rotation_by_rename_reads_the_old_file_to_its_end_and_the_new_from_its_start(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_rename_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(log_file, [f"before {n}" for n in range(100)])
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", file_settings(log_file, dataset), pipeline, tmp_path / "state")
        await source.poll()
        append(log_file, [f"late write to the old file {n}" for n in range(5)])
        log_file.rename(tmp_path / "app.log.1")  # out of the glob, still open
        append(tmp_path / "app.log.1", ["written after the rename"])
        append(log_file, [f"after {n}" for n in range(50)])
        await source.poll()
        await source.poll()
        await source.stop()
    expected = (
        [f"before {n}" for n in range(100)]
        + [f"late write to the old file {n}" for n in range(5)]
        + ["written after the rename"]
        + [f"after {n}" for n in range(50)]
    )
    assert await originals(es, names, dataset) == sorted(expected)


async def test_copytruncate_is_noticed_and_the_file_read_again_from_the_start(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_truncate_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(log_file, [f"first generation {n}" for n in range(40)])
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", file_settings(log_file, dataset), pipeline, tmp_path / "state")
        await source.poll()
        log_file.write_text("")  # logrotate's copytruncate
        append(log_file, [f"second {n}" for n in range(3)])
        await source.poll()
        await source.stop()
    expected = [f"first generation {n}" for n in range(40)] + [f"second {n}" for n in range(3)]
    assert await originals(es, names, dataset) == sorted(expected)


async def test_a_restart_resumes_from_the_checkpoint(es: AsyncElasticsearch, names: IndexNames, tmp_path: Path) -> None:
    dataset = f"test.file_restart_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(log_file, [f"one {n}" for n in range(30)])
    state = tmp_path / "state"
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        first = FileSource("files", file_settings(log_file, dataset), pipeline, state)
        assert await first.poll() == 30
        await first.stop()
        append(log_file, [f"two {n}" for n in range(7)])
        second = FileSource("files", file_settings(log_file, dataset), pipeline, state)
        assert await second.poll() == 7
        await second.stop()
    assert len(await originals(es, names, dataset)) == 37


async def test_start_at_end_skips_what_was_there_but_not_what_comes(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_end_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(log_file, ["old history"] * 10)
    settings = file_settings(log_file, dataset).model_copy(update={"start_at": "end"})
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", settings, pipeline, tmp_path / "state")
        assert await source.poll() == 0
        append(log_file, ["fresh"])
        assert await source.poll() == 1
        await source.stop()
    assert await originals(es, names, dataset) == ["fresh"]


async def test_multiline_messages_are_joined(es: AsyncElasticsearch, names: IndexNames, tmp_path: Path) -> None:
    dataset = f"test.file_multiline_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(
        log_file,
        [
            "2026-11-24 10:00:00 ERROR boom",
            "java.lang.IllegalStateException: bad",
            "    at a.b.C.d(C.java:10)",
            "2026-11-24 10:00:01 INFO fine",
        ],
    )
    settings = file_settings(log_file, dataset, multiline_start=r"^\d{4}-", multiline_timeout=0.05)
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", settings, pipeline, tmp_path / "state")
        await source.poll()
        await asyncio.sleep(0.1)
        await source.poll()  # the last message is sent once the timeout passes
        await source.stop()
    assert await originals(es, names, dataset) == [
        "2026-11-24 10:00:00 ERROR boom\njava.lang.IllegalStateException: bad\n    at a.b.C.d(C.java:10)",
        "2026-11-24 10:00:01 INFO fine",
    ]


async def test_lines_appended_just_before_a_stop_are_stored_with_the_pending_multiline_message(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_stop_{secrets.token_hex(3)}"
    log_file = tmp_path / "app.log"
    append(log_file, [f"2026-11-24 10:00:0{n} before {n}" for n in range(5)])
    # No poll and no multi-line timeout comes before the stop: only the stop reads the new lines.
    settings = file_settings(log_file, dataset, multiline_start=r"^\d{4}-").model_copy(
        update={"poll_interval": 3600, "multiline_timeout": 3600}
    )
    async with running_pipeline(es, names, tmp_path / "buffer") as pipeline:
        source = FileSource("files", settings, pipeline, tmp_path / "state")
        await source.start()
        # The first poll sends the complete messages; the last waits for the line after it.
        sent = lambda: pipeline.telemetry.value("secmon_component_sent_events_total", component="files")  # noqa: E731
        await until_at_least(sent, 4, "the complete messages")
        append(log_file, ["2026-11-24 10:01:00 after", "2026-11-24 10:01:01 ERROR boom", "    at a.b.C.d(C.java:10)"])
        await source.stop()
    assert await originals(es, names, dataset) == sorted(
        [f"2026-11-24 10:00:0{n} before {n}" for n in range(5)]
        + ["2026-11-24 10:01:00 after", "2026-11-24 10:01:01 ERROR boom\n    at a.b.C.d(C.java:10)"]
    )


def test_a_collector_killed_halfway_through_a_file_stores_every_line_exactly_once(
    es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    dataset = f"test.file_kill_{secrets.token_hex(3)}"
    log_file = tmp_path / "big.log"
    lines = OPENSSH.read_text().splitlines()
    with log_file.open("w") as handle:
        for copy in range(20):  # 40,000 lines; the copy number keeps every line distinct
            handle.writelines(f"{line} copy={copy}\n" for line in lines)
    total = 20 * len(lines)
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"elasticsearch:\n  url: {url}\n  index_prefix: {names.prefix}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"api:\n  address: 127.0.0.1:0\n"
        f"sources:\n  files:\n    type: file\n    include: [{log_file}]\n    start_at: beginning\n"
        f"    dataset: {dataset}\n"
    )
    index = names.events(dataset)

    def count() -> int:
        import urllib.request

        try:
            urllib.request.urlopen(f"{url}/{index}/_refresh", data=b"", timeout=5).close()
            with urllib.request.urlopen(f"{url}/{index}/_count", timeout=5) as response:
                return int(__import__("json").load(response)["count"])
        except OSError:
            return 0

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "secmon", "--config", str(config), "up"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    first = start()
    deadline = time.monotonic() + 120
    while count() < total // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = count()
    assert 0 < at_kill < total, f"the kill should land halfway, not at {at_kill}/{total}"

    second = start()
    try:
        deadline = time.monotonic() + 180
        while count() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # anything extra would show now
        assert count() == total
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert second.returncode == 0
