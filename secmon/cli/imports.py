"""``secmon import``: load log files or Windows event logs once, with progress and a summary."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from secmon.cli.context import console, ensure_cluster, load

if TYPE_CHECKING:
    from secmon.importer import ImportSummary
    from secmon.importer.parallel import Unit

app = typer.Typer(help="Import files once: text logs or Windows event logs.", no_args_is_help=True)

PathsArgument = Annotated[
    list[Path], typer.Argument(exists=True, readable=True, help="Files, or folders to search for them.")
]
AgencyOption = Annotated[str | None, typer.Option(help="organization.id to stamp on every event.")]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Worker processes that read, normalize and match (files, and parts of big ones); default: the cores.",
    ),
]


@app.command()
def logs(
    ctx: typer.Context,
    paths: PathsArgument,
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, syslog, apache_access, apache_error, ...")
    ] = "auto",
    agency: AgencyOption = None,
    jobs: JobsOption = None,
) -> None:
    """Import text log files, one event per line."""
    from secmon.importer.parallel import log_units

    files = _files(paths, "*")
    _import_files(ctx, files, log_units(files), "import", format, agency=agency, jobs=jobs)


@app.command()
def evtx(ctx: typer.Context, paths: PathsArgument, agency: AgencyOption = None, jobs: JobsOption = None) -> None:
    """Import Windows event log (.evtx) files, one event per record."""
    from secmon.importer.parallel import evtx_units

    files = _files(paths, "*.evtx")
    _import_files(ctx, files, evtx_units(files), "import-evtx", "evtx", agency=agency, jobs=jobs)


def _import_files(
    ctx: typer.Context,
    files: list[Path],
    units: Iterable[Unit],
    component: str,
    fmt: str,
    *,
    agency: str | None,
    jobs: int | None,
) -> None:
    from secmon.importer import import_context
    from secmon.importer.parallel import import_units
    from secmon.offline import file_size
    from secmon.offline.parallel import default_jobs

    settings = load(ctx)
    ensure_cluster(settings)
    failures: list[str] = []
    with _progress(DownloadColumn()) as progress:
        task = progress.add_task("importing", total=sum(file_size(path) for path in files))
        summary = asyncio.run(
            import_units(
                settings,
                units,
                import_context(component, fmt, agency),
                jobs or default_jobs(),
                failures=failures,
                progress=lambda done: progress.advance(task, done),
            )
        )
    for failure in failures:
        console.print(f"[yellow]unreadable:[/] {failure}", highlight=False)
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
    with _progress(MofNCompleteColumn()) as progress:
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


def _progress(count: ProgressColumn) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), count, TimeRemainingColumn(), console=console)


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
