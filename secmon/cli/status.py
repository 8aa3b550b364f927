"""``secmon status``: what the running service is doing, from its metrics, and the cluster's health."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import defaultdict

import typer
from elastic_transport import TransportError
from elasticsearch import ApiError
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from secmon.cli.context import console, load
from secmon.config import Settings
from secmon.store import cluster_health, cluster_url, connect

COLUMNS = {
    "secmon_component_received_events": "received",
    "secmon_component_sent_events": "sent",
    "secmon_component_errors": "errors",
    "secmon_component_discarded_events": "dropped",
}


def status(ctx: typer.Context) -> None:
    """Per-source counters, the disk buffer and Elasticsearch's health, from the running secmon."""
    settings = load(ctx)
    if settings.metrics.address is None:
        console.print("[yellow]metrics.address is off in the configuration: secmon status has nothing to read.[/]")
        raise typer.Exit(1)
    url = f"http://{settings.metrics.address}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            text = response.read().decode()
    except OSError:
        console.print(f"[yellow]secmon is not running[/] (nothing answers at {url}); start it with: secmon up")
        raise typer.Exit(1) from None
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
    asyncio.run(_print_cluster(settings))


async def _print_cluster(settings: Settings) -> None:
    client = connect(settings.elasticsearch, max_retries=0)
    try:
        version, health = await cluster_health(client)
        console.print(f"Elasticsearch {version} at {cluster_url(settings.elasticsearch)}: health {health}")
    except (ApiError, TransportError) as exc:
        console.print(f"[red]Elasticsearch at {cluster_url(settings.elasticsearch)} does not answer:[/] {exc}")
    finally:
        await client.close()
