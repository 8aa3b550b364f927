"""``secmon import``: load log files or Windows event logs once, with progress and a summary."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from secmon.cli.context import console, ensure_cluster, load

if TYPE_CHECKING:
    from secmon.importer import ImportSummary

app = typer.Typer(help="Import files once: text logs or Windows event logs.", no_args_is_help=True)

PathsArgument = Annotated[
    list[Path], typer.Argument(exists=True, readable=True, help="Files, or folders to search for them.")
]
AgencyOption = Annotated[str | None, typer.Option(help="organization.id to stamp on every event.")]


@app.command()
def logs(
    ctx: typer.Context,
    paths: PathsArgument,
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, syslog, apache_access, apache_error, ...")
    ] = "auto",
    agency: AgencyOption = None,
) -> None:
    """Import text log files, one event per line."""
    from secmon.importer import import_records, read_lines

    settings = load(ctx)
    ensure_cluster(settings)
    paths = _files(paths, "*")
    total = sum(1 for path in paths for line in path.open("rb") if line.strip())
    with _progress() as progress:
        task = progress.add_task("importing", total=total)
        records = (record for path in paths for record in read_lines(path))
        summary = asyncio.run(
            import_records(
                settings,
                records,
                component="import",
                fmt=format,
                agency=agency,
                progress=lambda n: progress.advance(task, n),
            )
        )
    _print_summary(summary)


@app.command()
def evtx(ctx: typer.Context, paths: PathsArgument, agency: AgencyOption = None) -> None:
    """Import Windows event log (.evtx) files, one event per record."""
    from secmon.collect.sources.evtx import read_evtx
    from secmon.importer import import_records, read_evtx_records

    settings = load(ctx)
    ensure_cluster(settings)
    paths = _files(paths, "*.evtx")
    failures: list[str] = []
    total = sum(1 for path in paths for _ in read_evtx(path, on_failure=lambda failure: None))
    with _progress() as progress:
        task = progress.add_task("importing", total=total)
        records = (record for path in paths for record in read_evtx_records(path, failures))
        summary = asyncio.run(
            import_records(
                settings,
                records,
                component="import-evtx",
                fmt="evtx",
                agency=agency,
                progress=lambda n: progress.advance(task, n),
            )
        )
    for failure in failures:
        console.print(f"[yellow]unreadable:[/] {failure}")
    _print_summary(summary)


@app.command()
def pcap(ctx: typer.Context, paths: PathsArgument, agency: AgencyOption = None) -> None:
    """Import packet captures (pcap, pcapng) as flow, DNS, HTTP, TLS, ICMP and ARP events."""
    from secmon.importer import import_events, read_pcap_events

    settings = load(ctx)
    ensure_cluster(settings)
    paths = _files(paths, "*.pcap*")
    failures: list[str] = []
    undecoded: Counter[str] = Counter()
    with _progress() as progress:
        task = progress.add_task("importing events", total=None)
        events = (item for path in paths for item in read_pcap_events(path, failures, undecoded))
        summary = asyncio.run(
            import_events(
                settings, events, component="import-pcap", agency=agency, progress=lambda n: progress.advance(task, n)
            )
        )
    for failure in failures:
        console.print(f"[yellow]damaged capture, events before the damage kept:[/] {failure}", highlight=False)
    if undecoded:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in undecoded.most_common())
        console.print(f"not decoded (frames or messages, by reason): {reasons}", highlight=False)
    _print_summary(summary)


def _files(paths: list[Path], pattern: str) -> list[Path]:
    """``paths`` with each folder replaced by the files in it (and below it) matching ``pattern``."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob(pattern) if p.is_file()) if path.is_dir() else [path]
    return files


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _print_summary(summary: ImportSummary) -> None:
    table = Table(
        "read", "failed to parse", "stored", "already stored", "dead-lettered", "failed", "new alerts", title="import"
    )
    table.add_row(
        f"{summary.read:,}",
        f"{summary.parse_failures:,}",
        f"{summary.stored:,}",
        f"{summary.duplicates:,}",
        f"{summary.dead_lettered:,}",
        f"{summary.failed:,}",
        f"{summary.alerts:,}",
    )
    console.print(table)
    if summary.failed:
        raise typer.Exit(1)
