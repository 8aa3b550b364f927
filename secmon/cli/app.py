"""``secmon``: the root command, global options and error handling shared by every subcommand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from secmon import __version__, log
from secmon.cli import alerts, apikey, bench, demo, detect, es, hunt, imports, kafka, rules, status
from secmon.cli.context import console, ensure_cluster, errors, load, run_async
from secmon.config import Settings
from secmon.errors import ConfigError, SecmonError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from secmon import service
    from secmon.serving import AsgiServer

app = typer.Typer(
    name="secmon",
    help="Security monitoring: collectors, Sigma detection and alerts over Elasticsearch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
logger = log.get_logger(__name__)
app.add_typer(es.app, name="es")
app.add_typer(kafka.app, name="kafka")
app.add_typer(bench.app, name="bench")
app.add_typer(imports.app, name="import")
app.add_typer(apikey.app, name="apikey")
app.add_typer(rules.rules_app, name="rules")
app.add_typer(alerts.app, name="alerts")
app.command(name="status")(status.status)
app.command(name="detect")(detect.detect)
app.command(name="hunt")(hunt.hunt)
app.command(name="demo")(demo.demo)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Configuration file (default: ./secmon.yml, /etc/secmon/secmon.yml)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level: DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Security monitoring: collectors, Sigma detection and alerts over Elasticsearch."""
    log.configure(log_level.upper())
    ctx.obj = config


@app.command()
def version() -> None:
    """Print secmon's version."""
    console.print(__version__)


@app.command()
def up(
    ctx: typer.Context,
    panel: Annotated[
        bool | None,
        typer.Option(
            "--panel/--no-panel",
            help="The live status panel. Default: on a terminal only; --panel draws it into a pipe too"
            " (with the terminal's control codes), --no-panel never.",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Once up, import the bundled attack data (agency demo) and list its alerts.")
    ] = False,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="With a bus: section, run only this role (collect, detect or api); repeat it for several."
            " Overrides roles: in the configuration.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start everything: a local Elasticsearch when none is configured, collectors, detection and the API."""
    from secmon.cli.panel import RolesPanel, StatusPanel
    from secmon.service import Running, RunningRoles, run_service
    from secmon.store import cluster_url

    settings = load(ctx)
    if role:
        settings = with_roles(settings, role)

    def roles_ready(running: RunningRoles) -> None:
        roles = ", ".join(settings.roles)
        console.print(f"[green]secmon is up[/] — roles {roles} over Kafka at {running.cluster.bootstrap}")
        _print_endpoints(settings, running.api, running.sources)

    def ready(running: Running) -> None:
        console.print(f"[green]secmon is up[/] — Elasticsearch at {cluster_url(settings.elasticsearch)}")
        _print_endpoints(settings, running.api, running.sources)

    if panel:
        console.forced_terminal = True  # asked for: draw it as on a terminal, wherever the output goes
        console.is_interactive = True  # rich decided at start it is not, and Live only refreshes when it is

    async def alongside(running: Running) -> None:
        tasks = []
        if panel is not False and console.is_terminal:
            tasks.append(asyncio.create_task(StatusPanel(running, console).run()))
        elif panel is None:
            # Said once, so that a redirected `secmon up` does not just lose its panel without a word.
            logger.info("No live panel: standard output is not a terminal (secmon up --panel draws it anyway).")
        if demo:
            tasks.append(asyncio.create_task(_replay_demo(running)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def roles_alongside(running: RunningRoles) -> None:
        if panel is not False and console.is_terminal:
            await RolesPanel(running, console).run()

    run_async(
        run_service(
            settings, on_ready=ready, monitor=alongside, on_roles_ready=roles_ready, monitor_roles=roles_alongside
        )
    )


def _print_endpoints(settings: Settings, api: AsgiServer | None, sources: Mapping[str, object]) -> None:
    """Where the API and each source listen, as ``secmon up`` says once it is up."""
    if api is not None:
        console.print(f"  API: {api.url} (OpenAPI at {api.url}/docs)")
    for component, source in sources.items():
        address = getattr(source, "address", None) or ""
        console.print(f"  source [bold]{component}[/]: {settings.sources[component].type} {address}")
    console.print("Ctrl-C stops it.")


def with_roles(settings: Settings, roles: list[str]) -> Settings:
    """``settings`` running ``roles`` instead of its own, validated as the file would be."""
    try:
        return Settings.model_validate({**settings.model_dump(), "roles": roles})
    except ValidationError as exc:
        raise ConfigError(f"--role: {exc.errors()[0]['msg']}") from None


async def _replay_demo(running: service.Running) -> None:
    """``secmon up --demo``: the bundled attack data through the running service, then its alerts."""
    from secmon.cli.demo import print_alerts
    from secmon.demo import AGENCY, demo_alerts, replay

    console.print("Importing the demo data (agency demo) …")
    # Through the running service: counted by its panel like a source's events, and no second start-up.
    await replay(running.settings, running=running)
    alerts = await demo_alerts(running.settings)
    print_alerts(alerts)
    if running.api is not None:
        console.print(
            f"API answering at {running.api.url}: create a key (secmon apikey create --role analyst --name you),"
            f" then secmon alerts ls --agency {AGENCY}, or open {running.api.url}/docs."
        )


@app.command()
def api(ctx: typer.Context) -> None:
    """Serve the API alone (alerts, rules, events), without collectors or detection."""
    from secmon.service import run_api

    settings = load(ctx)
    ensure_cluster(settings)

    def ready(server: AsgiServer) -> None:
        console.print(f"[green]secmon API at {server.url}[/] (OpenAPI at {server.url}/docs). Ctrl-C stops it.")

    run_async(run_api(settings, on_ready=ready))


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration and print it with defaults filled in."""
    settings = load(ctx)
    console.print_json(settings.model_dump_json(exclude={"elasticsearch": {"password", "api_key"}}))


def main() -> None:
    """Entry point of the ``secmon`` console script: errors become one clear line, exit 1."""
    try:
        app()
    except SecmonError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
