"""``secmon demo``: the bundled attack data raises the alerts it should, once however often it runs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import yaml
from elasticsearch import AsyncElasticsearch

from secmon.config import ElasticsearchSettings
from secmon.demo import DATA_DIR, SAMPLES
from secmon.store import IndexNames, cluster_url

# What the bundle raises with secmon's shipped rules: (rule title, source address) at least.
EXPECTED = {
    ("SSH Brute Force", "183.62.140.253"),
    ("SSH Brute Force", "187.141.143.180"),
    ("SSH Password Spraying or User Enumeration", "103.99.0.122"),
    ("TCP Port Scan", "172.16.0.8"),
    ("Possible DNS Tunnelling", "10.0.2.30"),
}


async def run_demo(config: Path) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": "80"}  # what a pipe gets: the tables come out whole anyway
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "secmon", "--config", str(config), "demo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=config.parent,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def demo_alerts(es: AsyncElasticsearch, names: IndexNames) -> dict[str, tuple[str, str]]:
    await es.indices.refresh(index=names.alerts)
    response = await es.search(index=names.alerts, size=1000, query={"term": {"organization.id": "demo"}})
    return {
        hit["_id"]: (hit["_source"]["rule"]["title"], hit["_source"].get("source", {}).get("ip"))
        for hit in response["hits"]["hits"]
    }


def alert_rows(out: str) -> set[tuple[str, str]]:
    """(rule, group) of each row of the demo's alert table, printed into a pipe as tab-separated lines."""
    lines = out.splitlines()
    header = lines.index("first seen\tlevel\trule\tgroup\tcount\tid")  # named as secmon alerts ls names them
    rows = [line.split("\t") for line in lines[header + 1 :] if line.count("\t") == 5]
    # A correlation's group-by values (the attacker's address) are in a column of their own.
    return {(rule, group.split("; ")[0]) for _, _, rule, group, _, _ in rows}


def test_bundle_is_small_and_credited() -> None:
    files = {path.name for path in DATA_DIR.iterdir()}
    assert {sample.name for sample in SAMPLES} <= files
    assert {"README.md", "LICENSE.loghub", "LICENSE.ndpi.txt"} <= files
    assert sum(path.stat().st_size for path in DATA_DIR.iterdir()) < 2_000_000
    readme = (DATA_DIR / "README.md").read_text()
    assert all(sample.name in readme for sample in SAMPLES)


async def test_demo_raises_alerts_once(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    demo_names = IndexNames(f"{names.prefix}-demo")
    config = tmp_path / "secmon.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": cluster_url(es_settings), "index_prefix": demo_names.prefix},
                "state_dir": str(tmp_path / "state"),
            }
        )
    )

    code, out, err = await run_demo(config)
    assert code == 0, out + err
    first = await demo_alerts(es, demo_names)
    assert set(first.values()) >= EXPECTED, sorted(set(first.values()))
    assert f"{len(first)} alerts of agency demo" in out
    assert "SSH Brute Force" in out
    assert alert_rows(out) >= {(title, f"source.ip={address}") for title, address in EXPECTED}
    assert err.count("Rules loaded.") == 1  # one service imports the three files
    assert "secmon alerts ls --agency demo" in out
    assert "/docs" in out

    code, out, err = await run_demo(config)
    assert code == 0, out + err
    assert await demo_alerts(es, demo_names) == first  # nothing new, nothing twice
    assert f"{len(first)} alerts of agency demo" in out  # and the alerts are still listed
    assert all(alert_id in out for alert_id in first)


async def test_up_demo_starts_once_says_the_panel_is_off_and_lists_the_alerts(
    es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    config = tmp_path / "secmon.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": cluster_url(es_settings), "index_prefix": f"{names.prefix}-updemo"},
                "state_dir": str(tmp_path / "state"),
                "metrics": {"address": None},
                "api": {"address": "127.0.0.1:0"},
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "secmon", "--config", str(config), "up", "--demo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []

    async def until_the_alerts_are_listed() -> None:
        while not lines or "API answering at" not in lines[-1]:
            line = await process.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)  # it ended before listing them
            lines.append(line.decode())

    try:
        await asyncio.wait_for(until_the_alerts_are_listed(), 180)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = await asyncio.wait_for(process.communicate(), 60)
    output = "".join(lines) + rest.decode()
    assert process.returncode == 0, output
    assert output.count("Rules loaded.") == 1, output  # the demo goes through the running service
    assert output.count("Elasticsearch ready.") == 1, output
    [panel_off] = [line for line in output.splitlines() if "No live panel" in line]
    assert "standard output is not a terminal" in panel_off and "--panel" in panel_off
    assert alert_rows(output) >= {(title, f"source.ip={address}") for title, address in EXPECTED}
