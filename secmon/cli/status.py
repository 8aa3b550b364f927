"""``secmon status``: what the running service is doing, from its metrics, and the clusters' health.

With a bus it also shows each consumer group's partitions on Kafka (who owns each, how far the
group committed, how far the topic goes) and events/s in and out, from two readings a second
apart. A collect-only or detect-only process may run without metrics: the Kafka part does not
need them.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import defaultdict
from typing import TYPE_CHECKING

import typer
from elastic_transport import TransportError
from elasticsearch import ApiError
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Column, Table
from rich.text import Text

from secmon.cli.context import console, load
from secmon.config import Settings
from secmon.store import cluster_health, cluster_url, connect

if TYPE_CHECKING:
    from secmon.bus.lag import GroupRate, PartitionLag
    from secmon.config import BusSettings

COLUMNS = {
    "secmon_component_received_events": "received",
    "secmon_component_sent_events": "sent",
    "secmon_component_errors": "errors",
    "secmon_component_discarded_events": "dropped",
}
RATE_SECONDS = 1.0  # between the two readings of the offsets the events/s come from
KAFKA_TIMEOUT = 5.0  # seconds a reading of the cluster may take


def status(ctx: typer.Context) -> None:
    """Per-source counters, the disk buffer and Elasticsearch's health, from the running secmon; Kafka's lag."""
    settings = load(ctx)
    metrics = _print_metrics(settings)
    if metrics:
        asyncio.run(_print_cluster(settings))
    kafka = settings.bus is not None and _print_kafka(settings.bus, settings.topic_prefix)
    if not (metrics or kafka):
        raise typer.Exit(1)


def _print_metrics(settings: Settings) -> bool:
    """The running service's counters; False (and why) when there are none to read."""
    if settings.metrics.address is None:
        console.print("[yellow]metrics.address is off in the configuration: secmon status has nothing to read.[/]")
        return False
    url = f"http://{settings.metrics.address}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            text = response.read().decode()
    except OSError:
        console.print(f"[yellow]secmon is not running[/] (nothing answers at {url}); start it with: secmon up")
        return False
    rows: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COLUMNS.values(), 0.0))
    buffered = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name in COLUMNS and sample.name.endswith("_total"):
                rows[sample.labels["component"]][COLUMNS[family.name]] += sample.value
            elif family.name == "secmon_buffer_bytes":
                buffered = sample.value
    table = Table("component", *COLUMNS.values(), title="secmon")
    for component, values in sorted(rows.items()):
        table.add_row(component, *(f"{values[column]:,.0f}" for column in COLUMNS.values()))
    console.print(table)
    console.print(f"disk buffer: {buffered / 1e6:,.1f} MB waiting for Elasticsearch")
    return True


def _print_kafka(bus: BusSettings, topic_prefix: str) -> bool:
    """A table per consumer group and its events/s; False (and why) when the cluster does not answer."""
    from secmon.bus.lag import bus_address, group_lag, rates  # librdkafka loads only with a bus
    from secmon.bus.topics import Topics
    from secmon.errors import BrokerError

    bootstrap, topics = bus_address(bus), Topics(topic_prefix, bus.group)
    try:
        before_at = time.monotonic()
        before = group_lag(bootstrap, topics, bus.options, timeout=KAFKA_TIMEOUT)
        time.sleep(RATE_SECONDS)
        after_at = time.monotonic()
        after = group_lag(bootstrap, topics, bus.options, timeout=KAFKA_TIMEOUT)
    except BrokerError as exc:
        console.print(Text(str(exc), "red"))
        return False
    groups = {topics.detect_group: topics.events, topics.correlate_group: topics.correlation}
    speeds = {rate.group: rate for rate in rates(before, after, after_at - before_at)}
    for group, topic in groups.items():
        rows = [row for row in after if row.group == group]
        if not rows:
            console.print(
                Text(f"Kafka {group} ← {topic}: the topic does not exist yet (secmon creates it when it starts)")
            )
            continue
        console.print(_lag_table(group, topic, rows))
        console.print(Text(_summary(group, topic, rows, speeds.get(group))))
    return True


def _lag_table(group: str, topic: str, rows: list[PartitionLag]) -> Table:
    numbers = [Column(name, justify="right") for name in ("committed", "end", "lag")]
    table = Table(
        Column("partition", justify="right"), "owner", *numbers, title=Text(f"Kafka {group} ← {topic}", "table.title")
    )
    for row in rows:
        committed = "none" if row.committed is None else f"{row.committed:,}"
        # Text, not markup: a client.id is whatever the member chose, brackets included.
        table.add_row(str(row.partition), Text(_owner(row)), committed, f"{row.end:,}", f"{row.lag:,}")
    return table


def _owner(row: PartitionLag) -> str:
    if row.owner is None:
        return "unassigned"
    return f"{row.owner} ({row.owner_host})" if row.owner_host else row.owner


def _summary(group: str, topic: str, rows: list[PartitionLag], speed: GroupRate | None) -> str:
    total = sum(row.lag for row in rows)
    owners = len({row.owner for row in rows if row.owner is not None})
    line = f"{group}: lag {total:,} in total, {owners} owning member{'s' if owners != 1 else ''}"
    if speed is not None:
        line += f"; {speed.produced:,.0f} events/s produced into {topic}, {speed.consumed:,.0f}/s consumed"
    return line


async def _print_cluster(settings: Settings) -> None:
    client = connect(settings.elasticsearch, max_retries=0)
    try:
        version, health = await cluster_health(client)
        console.print(f"Elasticsearch {version} at {cluster_url(settings.elasticsearch)}: health {health}")
    except (ApiError, TransportError) as exc:
        console.print(f"[red]Elasticsearch at {cluster_url(settings.elasticsearch)} does not answer:[/] {exc}")
    finally:
        await client.close()
