"""``secmon detect`` beside Zircolite, Chainsaw and Hayabusa: one process each over the same rules and EVTX files.

Run from the repository's root::

    python -m benchmarks.peers.detect -r SIGMA_RULES PATH... [--peers DIR] [--convert-hayabusa]

secmon is measured as a user runs it, ``secmon detect`` in a subprocess (after one unmeasured run
that fills its rule cache), so its wall time covers what a peer's does: start-up, rules, reading
and parsing the files, matching, writing the matches. ``secmon bench detect`` gives the matcher's
own events/s, without start-up and reading.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.peers.engines import (
    DEFAULT_PEERS_DIR,
    HAYABUSA_CONVERTER,
    RUNNERS,
    PeerError,
    PeerResult,
    convert_rules_for_hayabusa,
    find_peers,
)
from secmon.bench.detect import repeat_corpus
from secmon.offline import input_files
from secmon.offline.parallel import default_jobs

HAYABUSA_RULES = Path("hayabusa-sigma-rules")  # under the peers directory: the rules converted for Hayabusa
SECMON_NAME = "secmon detect"

console = Console()


def run_secmon(rules: list[Path], paths: list[Path], jobs: int) -> PeerResult:
    """``secmon detect --jobs`` as a process, timed like the peers: start-up, cached rules, reading, matching."""
    command = [
        sys.executable,
        "-m",
        "secmon",
        "detect",
        "--jobs",
        str(jobs),
        *(arg for folder in rules for arg in ("--rules", str(folder))),
        *map(str, paths),
    ]
    env = {**os.environ, "COLUMNS": "500"}  # its summary lines on stderr, unwrapped
    subprocess.run(command, capture_output=True, check=True, env=env)  # fills the rule cache
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - started
    summary = " ".join(done.stderr.split())
    events = re.search(r"([\d,]+) events, [\d,]+ matches", summary)
    loaded = re.search(r"([\d,]+) rules and [\d,]+ correlations loaded", summary)
    if events is None or loaded is None:
        raise PeerError(f"secmon detect printed no summary: {summary[-2000:]}")
    return PeerResult(
        f"{SECMON_NAME} --jobs {jobs}",
        seconds,
        int(events.group(1).replace(",", "")),
        int(loaded.group(1).replace(",", "")),
        len(done.stdout.splitlines()),
        f"a `secmon detect` process with {jobs} worker {'process' if jobs == 1 else 'processes'}:"
        " start-up, rules from the cache, EVTX reading and parsing, matching",
    )


def run_peers(peers_dir: Path, rules: list[Path], paths: list[Path], convert_hayabusa: bool) -> list[PeerResult]:
    """Each peer built under ``peers_dir``, on the EVTX files among ``paths`` and the first rule folder."""
    evtx_files = [p.resolve() for p in input_files(paths) if p.suffix.lower() == ".evtx"]
    results: list[PeerResult] = []
    for name, executable in find_peers(peers_dir).items():
        rules_dir = rules[0].resolve()
        if name == "hayabusa":
            # Hayabusa cannot read Sigma logsources: it runs the same rules converted by its own converter.
            converted = peers_dir / HAYABUSA_RULES
            converter = peers_dir / HAYABUSA_CONVERTER
            if convert_hayabusa and converter.is_file():
                with console.status(f"Converting {rules_dir} for Hayabusa (not timed) …"):
                    convert_rules_for_hayabusa(converter, rules_dir, converted)
            if not converted.is_dir():
                console.print(f"[yellow]hayabusa skipped:[/] no converted rules in {escape(str(converted))}")
                continue
            rules_dir = converted
        with tempfile.TemporaryDirectory(prefix="secmon-peers-") as workdir, console.status(f"Running {name} …"):
            try:
                results.append(RUNNERS[name](executable, rules_dir, evtx_files, Path(workdir)))
            except PeerError as exc:
                console.print(f"[yellow]{name} failed:[/] {escape(str(exc))}", highlight=False)
    return results


def main(
    paths: Annotated[
        list[Path],
        typer.Argument(help="EVTX files, or folders of them (secmon reads their other logs too).", exists=True),
    ],
    rules: Annotated[
        list[Path], typer.Option("--rules", "-r", help="Sigma rule folders; peers get the first.", exists=True)
    ],
    peers: Annotated[Path, typer.Option(help="Folder of the built peers.")] = DEFAULT_PEERS_DIR,
    convert_hayabusa: Annotated[
        bool, typer.Option(help="Convert the first rule folder for Hayabusa first (minutes, untimed, reused).")
    ] = False,
    corpus_repeat: Annotated[
        int, typer.Option(min=1, help="Hunt N copies of the files: a large corpus from small samples.")
    ] = 1,
) -> None:
    """Time secmon detect and each peer built under --peers over the same Sigma rules and EVTX files.

    secmon runs twice: on one process, and on all the cores (``--jobs``'s default).
    """
    with tempfile.TemporaryDirectory(prefix="secmon-corpus-") as folder:
        if corpus_repeat > 1:
            with console.status(f"Copying the files {corpus_repeat}× …"):
                paths = repeat_corpus(paths, corpus_repeat, Path(folder))
        compare(paths, rules, peers, convert_hayabusa)


def compare(paths: list[Path], rules: list[Path], peers: Path, convert_hayabusa: bool) -> None:
    ours = []
    for jobs in sorted({1, default_jobs()}):
        with console.status(f"Running secmon detect --jobs {jobs} …"):
            ours.append(run_secmon(rules, paths, jobs))
    results = [*ours, *run_peers(peers, rules, paths, convert_hayabusa)]
    table = Table("engine", "events", "rules loaded", "matches", "seconds", "events/s", title="Sigma over EVTX")
    for r in results:
        loaded = f"{r.rules_loaded:,}" if r.rules_loaded >= 0 else "?"
        rate = f"{r.events_per_second:,.0f}"
        table.add_row(r.name, f"{r.events:,}", loaded, f"{r.matches:,}", f"{r.seconds:.3f}", rate)
    console.print(table)
    for r in results:
        console.print(f"[dim]{escape(r.name)}: {escape(r.note)}[/]", highlight=False)
    if len(results) == len(ours):
        console.print(f"[yellow]no peer built under {escape(str(peers))}[/] (see benchmarks/README.md)")
    for peer in results[len(ours) :]:
        for own in ours:
            if peer.events_per_second:
                ratio = own.events_per_second / peer.events_per_second
                console.print(f"events/s, {escape(own.name)} / {escape(peer.name)}: [bold]{ratio:.1f}×[/]")


if __name__ == "__main__":
    typer.run(main)
