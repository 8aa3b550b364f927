"""``secmon es``: the local Elasticsearch node, and the status of whichever cluster is configured."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from secmon.cli.context import console, load
from secmon.config import Settings
from secmon.node import LocalNode
from secmon.store import IndexNames, cluster_health, cluster_url, connect
from secmon.store.inventory import document_counts, stored_indices

app = typer.Typer(help="Run the local Elasticsearch node and inspect the cluster.", no_args_is_help=True)


@app.command()
def start(ctx: typer.Context) -> None:
    """Fetch (once) and start the local node; waits until it is healthy."""
    settings = load(ctx)
    node = LocalNode(settings.elasticsearch.local)
    with console.status(f"Starting Elasticsearch {settings.elasticsearch.local.version} on {node.url} …"):
        status = node.start()
    already = "" if status.started else " (it was running already)"
    console.print(
        f"[green]Elasticsearch {status.version}[/] at {status.url}, "
        f"health [bold]{status.health}[/], pid {status.pid}{already}"
    )


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the local node and wait until its process is gone."""
    node = LocalNode(load(ctx).elasticsearch.local)
    if node.pid() is None:
        console.print(f"No local node is running on {node.url}.")
        return
    with console.status("Stopping Elasticsearch …"):
        node.stop()
    console.print("Elasticsearch stopped.")


@app.command()
def status(ctx: typer.Context) -> None:
    """URL, version, health and documents per secmon index of the configured cluster."""
    settings = load(ctx)
    if settings.elasticsearch.url is None:
        node = LocalNode(settings.elasticsearch.local).status()
        if not node.running:
            console.print(f"[yellow]The local node is not running[/] ({node.url}); start it with: secmon es start")
            raise typer.Exit(1)
    asyncio.run(_print_status(settings))


async def _print_status(settings: Settings) -> None:
    client = connect(settings.elasticsearch, max_retries=0)
    try:
        version, health = await cluster_health(client)
        names = IndexNames(settings.elasticsearch.index_prefix)
        counts = document_counts(await stored_indices(client, [names.all_pattern]))
    finally:
        await client.close()
    colour = {"green": "green", "yellow": "yellow"}.get(health, "red")
    console.print(f"Elasticsearch {version} at {cluster_url(settings.elasticsearch)}, health [{colour}]{health}[/]")
    table = Table("index / data stream", "documents", title=f"secmon indices ({names.prefix}-*)")
    for name, count in sorted(counts.items()):
        table.add_row(name, f"{count:,}")
    console.print(table if counts else "No secmon index yet.")
