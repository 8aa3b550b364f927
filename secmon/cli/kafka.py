"""``secmon kafka``: the local Kafka broker, started and stopped like the local Elasticsearch node."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secmon.cli.context import console
from secmon.config import LocalKafkaSettings

if TYPE_CHECKING:
    from secmon.bus import BrokerStatus, LocalKafka

app = typer.Typer(help="Run the local Kafka broker (for the scale-out mode, in progress).", no_args_is_help=True)

_DEFAULTS = LocalKafkaSettings()  # type: ignore[call-arg]

PortOption = Annotated[int, typer.Option("--port", help="Port of the broker's client listener.")]
ControllerPortOption = Annotated[int, typer.Option("--controller-port", help="Port of the KRaft controller listener.")]
HomeOption = Annotated[
    Path, typer.Option("--home", help="Cache folder of the broker's jars, data and logs.", file_okay=False)
]


def _broker(port: int, controller_port: int, home: Path) -> LocalKafka:
    from secmon.bus import LocalKafka  # librdkafka loads only for the commands that use it

    return LocalKafka(LocalKafkaSettings(port=port, controller_port=controller_port, home=home))  # type: ignore[call-arg]


@app.command()
def start(
    port: PortOption = _DEFAULTS.port,
    controller_port: ControllerPortOption = _DEFAULTS.controller_port,
    home: HomeOption = _DEFAULTS.home,
) -> None:
    """Fetch (once) and start the local broker; waits until it answers a metadata request."""
    broker = _broker(port, controller_port, home)
    with console.status(f"Starting Kafka {broker.settings.version} on {broker.bootstrap} …"):
        status = broker.start()
    already = "" if status.started else " (it was running already)"
    console.print(f"[green]Kafka {status.version}[/] at {status.bootstrap}, {_described(status)}{already}")


@app.command()
def stop(
    port: PortOption = _DEFAULTS.port,
    controller_port: ControllerPortOption = _DEFAULTS.controller_port,
    home: HomeOption = _DEFAULTS.home,
) -> None:
    """Stop the local broker cleanly and wait until its process is gone."""
    broker = _broker(port, controller_port, home)
    if broker.pid() is None:
        console.print(f"No local broker is running on {broker.bootstrap}.")
        return
    with console.status("Stopping Kafka …"):
        broker.stop()
    console.print("Kafka stopped.")


@app.command()
def status(
    port: PortOption = _DEFAULTS.port,
    controller_port: ControllerPortOption = _DEFAULTS.controller_port,
    home: HomeOption = _DEFAULTS.home,
) -> None:
    """Whether the local broker runs; its cluster id and topics when it answers (exit 1 when it does not run)."""
    broker = _broker(port, controller_port, home)
    status = broker.status()
    if not status.running:
        console.print(
            f"[yellow]The local Kafka broker is not running[/] ({status.bootstrap}); start it with: secmon kafka start"
        )
        raise typer.Exit(1)
    if status.cluster_id is None:
        console.print(f"[yellow]Kafka at {status.bootstrap} runs (pid {status.pid}) but does not answer yet.[/]")
        raise typer.Exit(1)
    console.print(f"Kafka {status.version} at {status.bootstrap}: running, {_described(status)}")


def _described(status: BrokerStatus) -> str:
    return f"cluster {status.cluster_id}, {status.topics} topic(s), pid {status.pid}"
