"""``secmon bench collect`` against the real test node: every line stored exactly once, nothing left behind.

No wall-clock thresholds: a loaded machine makes a run slower, never wrong.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.bench.collect import (
    APT_INSTALL,
    CollectReport,
    CollectResult,
    cpu_comparison,
    rsyslog_missing,
    run_rsyslog,
    run_secmon,
    syslog_lines,
)
from secmon.collect.transforms.normalize import normalize
from secmon.config import ElasticsearchSettings, Settings
from secmon.events import Record
from secmon.store import IndexNames, cluster_url

LINES = 2_000


def test_lines_are_reproducible_unique_rfc3164_that_secmon_parses() -> None:
    lines = syslog_lines(LINES)
    assert lines == syslog_lines(LINES)
    assert len(set(lines)) == LINES
    assert all(line.startswith(b"<") and line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    events = [normalize(Record(line.decode().rstrip("\n")), "syslog") for line in lines]
    assert not [event for event in events if event.get("tags")]  # no parse failures
    assert {event["process"]["name"] for event in events} == {"sshd", "sudo", "kernel"}


async def test_secmon_stores_every_line_once_and_cleans_up(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames
) -> None:
    run = f"{names.prefix}-benchcollect-secmon"
    result = await run_secmon(Settings(elasticsearch=es_settings), syslog_lines(LINES), run)
    assert (result.name, result.events, result.stored) == ("secmon", LINES, LINES)
    assert result.seconds > 0 and result.events_per_second > 0
    assert "secmon up" in result.setup
    await _assert_nothing_left(es, run)


async def test_rsyslog_stores_every_line_once_and_cleans_up(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames
) -> None:
    missing = rsyslog_missing()
    if missing is not None:
        pytest.skip(missing)  # says which apt-get install command is needed; a failed run fails
    run = f"{names.prefix}-benchcollect-rsyslog"
    result = await run_rsyslog(Settings(elasticsearch=es_settings), syslog_lines(LINES), run)
    assert (result.name, result.events, result.stored) == ("rsyslog", LINES, LINES)
    assert result.seconds > 0 and result.events_per_second > 0
    assert "omelasticsearch" in result.setup
    await _assert_nothing_left(es, run)


def test_the_command_prints_both_collectors_or_what_to_install(
    es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"elasticsearch:\n  url: {cluster_url(es_settings)}\n  index_prefix: {names.prefix}-cli\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )
    command = [sys.executable, "-m", "secmon", "--config", str(config), "bench", "collect", "--messages", "500"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    output = " ".join(result.stdout.split())
    assert "\nsecmon\t500\t500\t" in result.stdout  # collector, lines sent, stored (piped: tab-separated)
    if rsyslog_missing() is None:
        assert "\nrsyslog\t500\t500\t" in result.stdout and "ratio secmon / rsyslog:" in output
    else:
        assert f"rsyslog not measured: {rsyslog_missing()}" in output and APT_INSTALL in output


def test_cpu_per_event_is_compared_only_when_rsyslog_used_a_clock_tick() -> None:
    # A 500-line run cost rsyslog 0 ticks once, and the command died dividing by it.
    secmon = CollectResult("secmon", 500, 500, 0.5, 0.02, "")
    idle = CollectResult("rsyslog", 500, 500, 0.2, 0.0, "")
    busy = CollectResult("rsyslog", 500, 500, 0.2, 0.01, "")
    assert (
        cpu_comparison(CollectReport(secmon, idle)) == "CPU per event not compared (rsyslog's was under a clock tick)"
    )
    assert cpu_comparison(CollectReport(secmon, busy)) == "2.0× CPU per event"


async def _assert_nothing_left(es: AsyncElasticsearch, run: str) -> None:
    resolved = await es.indices.resolve_index(name=f"{run}*", expand_wildcards="all")
    assert (resolved["indices"], resolved["data_streams"]) == ([], [])
    templates = await es.options(ignore_status=404).indices.get_index_template(name=f"{run}*")
    assert templates.body.get("index_templates", []) == []
