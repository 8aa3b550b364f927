"""``secmon rules``: check rule files, test them against example events, convert them to queries.

Every command loads rules the way the service does (secmon's pipeline, logsource table and the
configured placeholders), so a rule that passes here loads in production. :func:`check_examples`
is also what ``tests/detection/test_cases.py`` runs over every shipped rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from secmon.cli.context import console, errors, load

if TYPE_CHECKING:
    from secmon.detection.convert import QueryFormat
    from secmon.detection.rules import Rule, RuleProblem

rules_app = typer.Typer(
    help="Check Sigma rules, test them on example events, convert them to queries.", no_args_is_help=True
)

RuleArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A Sigma rule file.")]
PathsArgument = Annotated[
    list[Path], typer.Argument(exists=True, help="Sigma rule files, or folders to search for them.")
]
MatchOption = Annotated[
    Path | None,
    typer.Option("--match", exists=True, dir_okay=False, help="JSON-lines file of events the rule must each match."),
]
NomatchOption = Annotated[
    Path | None,
    typer.Option("--nomatch", exists=True, dir_okay=False, help="JSON-lines file of events the rule may not match."),
]


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """What the rules of a file made of one example event (one line of a JSON-lines file)."""

    file: str
    line: int
    expected: bool  # True: the event must match
    matched: tuple[str, ...] = ()  # titles of the rules that matched it
    error: str | None = None  # the line is not a JSON object

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.matched) is self.expected

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class ExampleReport:
    """A rule file's verdict on its examples, or the problems that kept its rules from loading."""

    rules: list[Rule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    results: list[ExampleResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rules) and not self.problems and all(result.ok for result in self.results)


def check_examples(
    rule_file: Path,
    match: Path | None = None,
    nomatch: Path | None = None,
    *,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> ExampleReport:
    """Load ``rule_file`` and say, per line of ``match`` and ``nomatch``, whether it did what it should."""
    from secmon.detection.engine import Engine
    from secmon.detection.loader import load_text
    from secmon.detection.logsource import LogsourceMap
    from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
    from secmon.detection.rules import Rule, RuleProblem

    report = ExampleReport()
    logsources = LogsourceMap.load(RULES_DIR / "logsources.yml")
    pipeline = build_pipeline(logsources, default_pipeline_files(), placeholders)
    try:
        text = rule_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(RuleProblem(str(rule_file), f"cannot read: {exc}", "io"))
        return report
    for item in load_text(text, str(rule_file), pipeline):
        if isinstance(item, Rule):
            report.rules.append(item)
        else:
            report.problems.append(item)
    if not report.rules and not report.problems:
        reason = "no detection rule in the file (a correlation rule is not matched against single events)"
        report.problems.append(RuleProblem(str(rule_file), reason, "sigma"))
    if report.problems:
        return report
    engine = Engine(report.rules, logsources)
    for examples, expected in ((match, True), (nomatch, False)):
        if examples is None:
            continue
        for number, event in _events(examples):
            if isinstance(event, str):
                report.results.append(ExampleResult(str(examples), number, expected, error=event))
            else:
                titles = tuple(rule.title for rule in engine.match(event))
                report.results.append(ExampleResult(str(examples), number, expected, titles))
    return report


def _events(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """The events of a JSON-lines file with their line numbers; a line that is not one is its error."""
    found: list[tuple[int, dict[str, Any] | str]] = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            found.append((number, f"invalid JSON: {exc}"))
            continue
        found.append((number, event if isinstance(event, dict) else f"not a JSON object: {type(event).__name__}"))
    return found


@rules_app.command()
def lint(ctx: typer.Context, paths: PathsArgument) -> None:
    """Load every rule as the service would and list each problem with its file and line; exit 1 if any."""
    from secmon.detection.correlation import load_correlations
    from secmon.detection.loader import load_rules
    from secmon.detection.logsource import LogsourceMap
    from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files

    placeholders = load(ctx).detection.placeholders
    pipeline = build_pipeline(LogsourceMap.load(RULES_DIR / "logsources.yml"), default_pipeline_files(), placeholders)
    ruleset = load_rules(paths, pipeline)
    correlations, correlation_problems = load_correlations(paths, pipeline, ruleset.rules)
    problems = list(dict.fromkeys(ruleset.problems + correlation_problems))  # pySigma may report an error twice
    by_kind: dict[str, list[RuleProblem]] = {}
    for problem in problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    for kind, found in sorted(by_kind.items()):
        console.print(f"[bold]{kind}[/] ({len(found):,})")
        for problem in sorted(found, key=lambda p: (p.path, p.line or 0)):
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    loaded = f"{ruleset.files:,} files: {len(ruleset.rules):,} rules and {len(correlations):,} correlations loaded"
    if not problems:
        console.print(f"[green]{loaded}, no problems.[/]")
        return
    table = Table("kind", "problems", title="problems by kind")
    for kind, count in Counter(p.kind for p in problems).most_common():
        table.add_row(kind, f"{count:,}")
    console.print(table)
    console.print(f"[red]{loaded}, {len(problems):,} problems.[/]")
    raise typer.Exit(1)


@rules_app.command()
def test(
    ctx: typer.Context,
    rule: RuleArgument,
    match: MatchOption = None,
    nomatch: NomatchOption = None,
) -> None:
    """Match example events (JSON lines, one ECS event a line) against a rule file; exit 1 on a surprise."""
    if match is None and nomatch is None:
        raise typer.BadParameter("give --match, --nomatch or both", param_hint="--match/--nomatch")
    report = check_examples(rule, match, nomatch, placeholders=load(ctx).detection.placeholders)
    for problem in report.problems:
        console.print(f"[red]✗[/] {problem}", highlight=False, soft_wrap=True)
    for result in report.results:
        where = str(result)
        if result.error:
            console.print(f"[red]✗[/] {where}: {result.error}", highlight=False, soft_wrap=True)
        elif result.ok:
            verdict = f"matched ({', '.join(result.matched)})" if result.expected else "did not match"
            console.print(f"[green]✓[/] {where}: {verdict}", highlight=False, soft_wrap=True)
        elif result.expected:
            console.print(f"[red]✗[/] {where}: expected a match, matched nothing", highlight=False, soft_wrap=True)
        else:
            titles = ", ".join(result.matched)
            console.print(f"[red]✗[/] {where}: expected no match, matched {titles}", highlight=False, soft_wrap=True)
    if report.problems:
        console.print(f"[red]The rules of {rule} did not load.[/]", highlight=False)
        raise typer.Exit(1)
    good = sum(result.ok for result in report.results)
    colour = "green" if report.ok else "red"
    console.print(f"[{colour}]{good:,} of {len(report.results):,} examples as expected.[/]")
    if not report.ok:
        raise typer.Exit(1)


@rules_app.command()
def convert(
    ctx: typer.Context,
    paths: PathsArgument,
    query_format: Annotated[
        str, typer.Option("--format", "-f", help="lucene (Elasticsearch query_string) or esql.")
    ] = "lucene",
) -> None:
    """Print each rule's Elasticsearch query; rules the backend cannot convert are listed on stderr (exit 1)."""
    from secmon.detection.convert import Converter, QueryFormat
    from secmon.store import IndexNames

    fmt = _query_format(query_format, QueryFormat)
    settings = load(ctx)
    converter = Converter(
        fmt,
        placeholders=settings.detection.placeholders,
        index=IndexNames(settings.elasticsearch.index_prefix).events_pattern,
    )
    conversions = converter.convert_paths(paths)
    failed = [c for c in conversions if c.problem is not None]
    for conversion in conversions:
        if conversion.problem is None:
            header = f"# {conversion.title} ({conversion.path})"
            console.print(header, style="dim", markup=False, highlight=False, soft_wrap=True)
            for query in conversion.queries:
                console.print(query, markup=False, highlight=False, soft_wrap=True)
    for conversion in failed:
        errors.print(f"not converted: {conversion.problem}", markup=False, highlight=False, soft_wrap=True)
    errors.print(f"{len(conversions) - len(failed):,} rules converted to {fmt}, {len(failed):,} not converted.")
    if failed:
        raise typer.Exit(1)


def _query_format(value: str, formats: type[QueryFormat]) -> QueryFormat:
    try:
        return formats(value.lower())
    except ValueError:
        choices = ", ".join(f.value for f in formats)
        raise typer.BadParameter(f"{value!r} is not one of {choices}", param_hint="--format") from None
