"""``secmon demo``: import a bundle of real attack data and show the alerts secmon raised on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from secmon.cli.context import console, ensure_cluster, load

if TYPE_CHECKING:
    from secmon.demo import Sample
    from secmon.importer import ImportSummary

# The demo's alerts are correlations: their group-by values (source.ip=…) say whom each is about.
DEMO_COLUMNS = ("first seen", "level", "rule", "group", "count", "id")


def demo(ctx: typer.Context) -> None:
    """Import real attack logs and captures (agency demo) into the cluster and list the alerts they raise."""
    import asyncio

    from elastic_transport import TransportError

    from secmon.cli.alerts import api_url
    from secmon.demo import AGENCY, SAMPLES, demo_alerts, replay
    from secmon.errors import StoreError
    from secmon.store import cluster_url

    settings = load(ctx)
    ensure_cluster(settings)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=console, transient=False
    )
    with progress:
        tasks: dict[str, TaskID] = {
            sample.name: progress.add_task(sample.name, total=sample.lines() if sample.kind == "log" else None)
            for sample in SAMPLES
        }

        def advance(sample: Sample, n: int) -> None:
            progress.advance(tasks[sample.name], n)

        async def run() -> tuple[dict[str, ImportSummary], list[dict[str, Any]]]:
            summaries = await replay(settings, advance)
            for name, task in tasks.items():  # captures have no known total: mark them done
                progress.update(task, total=summaries[name].read, completed=summaries[name].read)
            return summaries, await demo_alerts(settings)

        try:
            summaries, alerts = asyncio.run(run())
        except TransportError as exc:
            raise StoreError(
                f"Elasticsearch at {cluster_url(settings.elasticsearch)} could not be reached ({exc.message}):"
                " check elasticsearch.url in the configuration, or leave it out to use the local node"
            ) from None

    _print_imports(summaries)
    if not alerts:
        console.print(
            "[yellow]No demo alerts.[/] Is detection on (detection.enabled) with secmon's rules in detection.rules?"
        )
        raise typer.Exit(1)
    print_alerts(alerts)
    url = api_url(settings)
    console.print(f"Next: [bold]secmon alerts ls --agency {AGENCY}[/] (with secmon up or secmon api running),")
    console.print(f"      or open [bold]{url}/docs[/] and try GET /alerts?agency={AGENCY}.", highlight=False)
    if any(summary.failed for summary in summaries.values()):
        raise typer.Exit(1)


def _print_imports(summaries: dict[str, ImportSummary]) -> None:
    from secmon.demo import SAMPLES

    table = Table("file", "what", "events", "stored", "already stored", "new alerts", title="demo data imported")
    for sample in SAMPLES:
        summary = summaries[sample.name]
        table.add_row(
            sample.name,
            sample.what,
            f"{summary.read:,}",
            f"{summary.stored:,}",
            f"{summary.duplicates:,}",
            f"{summary.alerts:,}",
        )
    console.print(table)


def print_alerts(alerts: list[dict[str, Any]]) -> None:
    """The demo agency's alerts (stored documents), with the columns ``secmon alerts ls`` names the same way."""
    from secmon.api.schemas import AlertSummary
    from secmon.cli.alerts import alert_table

    title = f"{len(alerts):,} alerts of agency demo"
    summaries = [AlertSummary.of(document) for document in alerts]
    console.print(alert_table(summaries, DEMO_COLUMNS, title=title))
