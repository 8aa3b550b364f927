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


@app.command()
def collect(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option("--messages", "-n", min=1, help="Syslog lines to send to each.")] = 100_000,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Lines per second to send; default: as fast as they are taken.")
    ] = None,
) -> None:
    """Send the same syslog lines over TCP to secmon and to rsyslog with omelasticsearch; print events/s stored."""
    from rich.markup import escape

    from secmon.bench.collect import bench_collect

    settings = load(ctx)
    ensure_cluster(settings)
    pace = f"at {rate:,.0f}/s" if rate else "as fast as taken"
    with console.status(f"Sending {messages:,} syslog lines {pace} to secmon, then to rsyslog …"):
        report = asyncio.run(bench_collect(settings, messages, rate))
    table = Table(
        "collector",
        "lines sent",
        "stored",
        "seconds",
        "events/s",
        title=f"secmon bench collect: TCP syslog into Elasticsearch, {pace}",
    )
    results = [r for r in (report.secmon, report.rsyslog) if r is not None]
    for r in results:
        table.add_row(r.name, f"{r.events:,}", f"{r.stored:,}", f"{r.seconds:.2f}", f"{r.events_per_second:,.0f}")
    console.print(table)
    for r in results:
        console.print(f"[bold]{r.name}[/]: {escape(r.setup)}", highlight=False)
    if report.rsyslog is None:
        # Escaped: rsyslog's own messages carry [brackets] that rich would read as markup.
        console.print(f"[yellow]rsyslog not measured:[/] {escape(report.rsyslog_problem or '')}", highlight=False)
        return
    ratio = report.secmon.events_per_second / report.rsyslog.events_per_second
    console.print(f"ratio secmon / rsyslog: [bold]{ratio:.2f}×[/]")
