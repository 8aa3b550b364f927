"""What every subcommand shares: the console and the loaded configuration."""

from __future__ import annotations

import re
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import typer
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table

from secmon.config import Settings, load_settings

T = TypeVar("T")
# Wide enough that no value of a cell is ever wrapped or cut when it is rendered on its own.
_UNBOUNDED_WIDTH = 1_000_000


class CliConsole(Console):
    """rich's console, except that nothing is cut short when standard output is not a terminal.

    On a terminal a table is drawn to fit the screen, folding or eliding long values. Into a pipe
    or a file there is no screen, and whoever reads the output (a script, grep, a log) needs whole
    values: there a table is printed as tab-separated lines (its title, a header line, one line per
    row; no borders) and text is not wrapped at 80 columns, as ``kubectl``, ``gh`` and ``docker`` do.
    Every command prints through this one console, so every table behaves the same.
    """

    forced_terminal = False  # set by a command asked to draw as on a terminal anyway (secmon up --panel)

    @property
    def is_terminal(self) -> bool:
        return self.forced_terminal or super().is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        if self.is_terminal:
            super().print(*objects, **options)
            return
        if options.get("soft_wrap") is None:
            options["soft_wrap"] = True  # no line breaks of rich's own, no cropping at the width
        super().print(*(TabSeparated(item) if isinstance(item, Table) else item for item in objects), **options)


class TabSeparated:
    """A rich table as tab-separated plain text, every value whole; cells of several lines join with "; "."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        cell_options = options.update(width=_UNBOUNDED_WIDTH, height=None, highlight=False)

        def line(cells: Iterable[RenderableType]) -> Iterable[Segment]:
            yield Segment("\t".join(_plain(console, cell_options, cell) for cell in cells))
            yield Segment.line()

        if table.title:
            yield from line([table.title])
        if table.show_header:
            yield from line(column.header for column in table.columns)
        for row in zip(*(column.cells for column in table.columns), strict=True):
            yield from line(row)
        if table.caption:
            yield from line([table.caption])


def _plain(console: Console, options: ConsoleOptions, renderable: RenderableType) -> str:
    """What ``renderable`` shows, without styles, on one line: tabs become spaces, lines join with "; "."""
    lines = console.render_lines(renderable, options, pad=False)
    texts = ("".join(segment.text for segment in line if not segment.control).rstrip() for line in lines)
    return _CONTROL.sub(_escaped, "; ".join(text for text in texts if text).replace("\t", " "))


# Characters that would end or garble a line for whoever reads the pipe (a carriage return, a
# vertical tab, NEL, the Unicode line separators ...), as a value sent by an agency may hold.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


console = CliConsole()
errors = CliConsole(stderr=True)


def remark(message: str) -> None:
    """Say something about the output (a count, a hint) rather than print part of it.

    It goes beside the output on a terminal, and to stderr when standard output is a pipe or a
    file, so that what is piped is the rows alone.
    """
    (console if console.is_terminal else errors).print(message, highlight=False)


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
