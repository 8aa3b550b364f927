"""``secmon bench scale`` against the real test node and a broker of its own: every line stored once in each
configuration, the same alerts from each, nothing left behind.

No wall-clock thresholds: a loaded machine makes a run slower, never wrong.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.bench.scale import (
    ATTACKERS,
    BRUTE_FORCE_EVERY,
    LINES_PER_SECOND,
    compact,
    parse_workers,
    scale_lines,
    sparkline,
)
from secmon.bus import LocalKafka
from secmon.collect.transforms.normalize import normalize
from secmon.config import ElasticsearchSettings, LocalKafkaSettings
from secmon.events import Record
from secmon.store import IndexNames, cluster_url

LINES = 2_000
KAFKA_PORT = 9792  # apart from the bus tests' broker (9392) and a user's (9092)


def test_lines_are_reproducible_parsed_spread_over_hosts_and_carry_brute_force() -> None:
    lines = scale_lines(LINES)
    assert lines == scale_lines(LINES)
    assert all(line.startswith(b"<") and line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    events = [normalize(Record(line.decode().rstrip("\n")), "syslog") for line in lines]
    assert not [event for event in events if event.get("tags")]  # no parse failures
    assert {event["process"]["name"] for event in events} == {"sshd", "sudo", "kernel"}
    # Many hosts, so that the partitions (keyed by host) share the work.
    assert len({event["host"]["hostname"] for event in events}) > 500
    attacks = Counter(
        event["source"]["ip"]
        for event in events
        if event.get("event", {}).get("action") == "ssh_login" and event.get("source", {}).get("ip") in ATTACKERS
    )
    assert attacks == {attacker: LINES // BRUTE_FORCE_EVERY // len(ATTACKERS) for attacker in ATTACKERS}
    # Event time moves one second per LINES_PER_SECOND lines.
    assert b" 00:00:00 " in lines[0] and b" 00:00:01 " in lines[LINES_PER_SECOND]


def test_worker_counts_and_the_lag_row() -> None:
    assert parse_workers("1,2,4") == [1, 2, 4]
    assert parse_workers(" 2, 2,1 ") == [2, 1]
    for wrong in ("", "0", "1,x", "-1"):
        with pytest.raises(ValueError, match="worker counts"):
            parse_workers(wrong)
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 5, 10]) == "▁▄█"
    assert len(sparkline(list(range(500)), width=60)) <= 60
    assert (compact(999), compact(12_345), compact(2_500_000)) == ("999", "12.3k", "2.5M")


async def test_the_command_measures_every_configuration_and_cleans_up(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    prefix = f"{names.prefix}-cli"
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"elasticsearch:\n  url: {cluster_url(es_settings)}\n  index_prefix: {prefix}\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )
    command = [
        sys.executable, "-m", "secmon", "--config", str(config), "bench", "scale",
        "-n", str(LINES), "--workers", "1", "--partitions", "2", "--kafka-port", str(KAFKA_PORT),
    ]  # fmt: skip
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Piped, the table is tab-separated: configuration, events, stored, alerts, seconds, events/s, µs/event …
    rows = {
        match["name"]: match.groupdict()
        for match in re.finditer(
            r"^(?P<name>single|bus ×1)\t(?P<events>[\d,]+)\t(?P<stored>[\d,]+)\t(?P<alerts>[\d,]+)\t"
            r"(?P<seconds>[\d.]+)\t(?P<rate>[\d,]+)\t(?P<total>[\d,]+)\t(?P<collector>\S+)\t(?P<detect>\S+)\t"
            r"(?P<lag>\S+)$",
            result.stdout,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"single", "bus ×1"}, result.stdout
    for row in rows.values():
        assert row["events"] == row["stored"] == f"{LINES:,}"  # every line stored, and once
        assert float(row["seconds"]) > 0 and int(row["total"].replace(",", "")) > 0
    # The same lines and rules: the two brute force attackers raise the same alerts either way.
    assert rows["single"]["alerts"] == rows["bus ×1"]["alerts"] != "0"
    assert (rows["single"]["collector"], rows["single"]["detect"], rows["single"]["lag"]) == ("—", "—", "—")
    assert int(rows["bus ×1"]["collector"].replace(",", "")) > 0 and int(rows["bus ×1"]["detect"].replace(",", "")) > 0
    assert int(rows["bus ×1"]["lag"].replace(",", "")) >= 0
    output = " ".join(result.stdout.split())
    assert "ratio bus ×1 / single: events/s" in output and "lag bus ×1 (detect group, highest in each 2 s):" in output
    assert "single: " in output and "per secmon CPU second" in output

    # Nothing left: no index or data stream of either configuration, and the broker it started is stopped.
    resolved = await es.indices.resolve_index(name=f"{prefix}-*", expand_wildcards="all")
    assert (resolved["indices"], resolved["data_streams"]) == ([], [])
    broker = LocalKafka(LocalKafkaSettings(port=KAFKA_PORT, controller_port=KAFKA_PORT + 1))  # type: ignore[call-arg]
    assert broker.pid() is None
