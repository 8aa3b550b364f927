"""``secmon bench``: measured numbers, each beside a peer run on the same data in the same run."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from secmon.cli.context import console, ensure_cluster, load

app = typer.Typer(help="Benchmarks, each beside a peer measured in the same run.", no_args_is_help=True)


@app.command()
def ingest(
    ctx: typer.Context,
    events: Annotated[int, typer.Option("--events", "-n", min=1, help="Synthetic events to write.")] = 100_000,
    rounds: Annotated[int, typer.Option(min=1, help="Measured rounds; the median is reported.")] = 3,
) -> None:
    """Bulk-index synthetic ECS events with secmon's writer and with parallel_bulk; print events/s and MB/s."""
    from secmon.bench.ingest import bench_ingest

    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Writing {events:,} events, {rounds + 1} rounds each for secmon and parallel_bulk …"):
        results = asyncio.run(bench_ingest(settings, events, rounds))
    table = Table(
        "writer",
        "events",
        "stored",
        "seconds",
        "events/s",
        "MB/s",
        title=f"secmon bench ingest (median of {rounds} rounds)",
    )
    for r in results:
        table.add_row(
            r.name,
            f"{r.events:,}",
            f"{r.stored:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_second:,.0f}",
            f"{r.megabytes_per_second:.1f}",
        )
    console.print(table)
    ours, peer = results
    console.print(f"ratio secmon / parallel_bulk: [bold]{ours.events_per_second / peer.events_per_second:.2f}×[/]")
