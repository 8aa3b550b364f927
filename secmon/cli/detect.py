"""``secmon detect``: hunt through EVTX, JSON lines and log files with Sigma rules, no Elasticsearch needed."""

from __future__ import annotations

import sys
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from secmon.cli.context import console, errors
from secmon.config import SHIPPED_RULES_DIR, default_cache_dir

LEVEL_STYLES = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    table = "table"


def detect(
    paths: Annotated[
        list[Path], typer.Argument(help="EVTX, JSON-lines or log files, or folders of them.", exists=True)
    ],
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules", "-r", help="Sigma rule folders or files (repeatable); default: secmon's rules/.", exists=True
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="jsonl: one JSON line per match; table.")] = (
        OutputFormat.jsonl
    ),
    show_problems: Annotated[bool, typer.Option(help="List every rule that was not loaded, and why.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Worker processes (files and parts of big EVTX files); default: the cores."
        ),
    ] = None,
) -> None:
    """Match every event of PATHS against Sigma rules and print the matches; a summary goes to stderr."""
    from secmon.detection.detector import load_detector
    from secmon.offline import HuntStats, file_size, hunt, input_files
    from secmon.offline.parallel import DetectorSource, default_jobs, hunt_parallel

    rule_paths = tuple(rules or [SHIPPED_RULES_DIR])
    cache_dir = default_cache_dir() / "rule-cache"
    with errors.status("Loading rules …"):
        detector = load_detector(rule_paths, cache_dir=cache_dir)
    problems = detector.ruleset.problems
    errors.print(
        f"{len(detector.rules):,} rules and {len(detector.ruleset.correlations):,} correlations loaded"
        f" in {detector.stats.seconds:.2f}s"
        f"{' (cached)' if detector.stats.from_cache else ''}; {len(problems):,} not loaded"
        + (
            f" ({', '.join(f'{k}: {n}' for k, n in Counter(p.kind for p in problems).most_common())})"
            if problems
            else ""
        )
    )
    if show_problems:
        for problem in problems:
            errors.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    stats = HuntStats()
    jobs = jobs or default_jobs()
    files = input_files(paths)
    bar = Progress(
        TextColumn("hunting"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=errors, transient=True
    )
    task = bar.add_task("hunting", total=sum(file_size(path) for path in files))
    done = lambda size: bar.advance(task, size)  # noqa: E731
    if jobs == 1:
        findings = hunt(detector, files, stats, progress=done)
    else:
        findings = hunt_parallel(detector, files, jobs, DetectorSource(rule_paths, cache_dir), stats, progress=done)
    if output is OutputFormat.jsonl:
        out = sys.stdout.buffer
        with bar:
            for finding in findings:
                out.write(orjson.dumps(finding.as_json()) + b"\n")
        out.flush()
    else:
        table = Table("time", "level", "rule", "file", "record/line")
        with bar:
            found = list(findings)
        for finding in found:
            where = finding.record_id if finding.record_id is not None else finding.line
            style = LEVEL_STYLES.get(finding.level, "")
            table.add_row(
                finding.timestamp, f"[{style}]{finding.level}[/]", finding.title, Path(finding.file).name, str(where)
            )
        console.print(table)
    for failure in stats.read_failures:
        errors.print(f"[yellow]unreadable part skipped:[/] {failure}", highlight=False)
    rate = stats.events / stats.seconds if stats.seconds else 0.0
    errors.print(
        f"{stats.files:,} files, {stats.events:,} events, {stats.findings:,} matches in {stats.seconds:.2f}s "
        f"({rate:,.0f} events/s, reading and parsing included; {jobs} {'process' if jobs == 1 else 'processes'})"
    )
