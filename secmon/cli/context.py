"""What every subcommand shares: the console and the loaded configuration."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from secmon.config import Settings, load_settings

console = Console()
T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived service coroutine on uvloop (a faster event loop for sockets) when installed."""
    try:
        import uvloop
    except ImportError:  # not on every platform (uvicorn[standard] installs it on Linux and macOS)
        import asyncio

        return asyncio.run(main)
    return uvloop.run(main)


def load(ctx: typer.Context) -> Settings:
    """The configuration named by ``--config`` (or found in the default places), validated."""
    root = ctx.find_root()
    return load_settings(root.obj)


def ensure_cluster(settings: Settings) -> None:
    """Start the local node when no cluster is configured and it is not running yet."""
    if settings.elasticsearch.url is not None:
        return
    from secmon.node import LocalNode

    node = LocalNode(settings.elasticsearch.local)
    if node.pid() is None:
        with console.status(f"Starting the local Elasticsearch node on {node.url} …"):
            node.start()


# Ids are URL-safe base64 and may begin with "-", which the command line would take for an
# option: commands that take ids pass unknown options through as arguments, and check_ids
# refuses what is clearly a mistyped option ("--assigne").
TAKES_IDS: dict[str, Any] = {"ignore_unknown_options": True}


def check_ids(ids: list[str]) -> list[str]:
    """``ids`` as given, after refusing an unknown ``--option`` that came through as one."""
    for value in ids:
        if value.startswith("--"):
            raise typer.BadParameter(f"no such option: {value} (an id never starts with --)")
    return ids
