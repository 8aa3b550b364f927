"""Sigma rules → Elasticsearch queries, through the same pipeline the streaming matcher uses.

``secmon rules convert`` prints them, so an analyst can hunt the stored events with the rule
that fired, and the differential test (tests/detection/test_differential.py) runs them against
Elasticsearch to check the matcher. The pipeline maps fields as secmon stores events and adds
each logsource's event selection as conditions, so a query selects the events the matcher
routes to the rule. A rule is converted by pySigma's Elasticsearch backends: Lucene (the
``query_string`` syntax) or ES|QL. ES|QL is typed, so its queries get two more steps: they
read secmon's event data streams (not ``*``), and a number compared with a keyword field (an
``EventID: 4688`` against ``winlog.event_id``, which secmon stores as text) is quoted.

Each rule converts on its own: a rule the backend cannot convert (a field reference in Lucene,
a correlation without ES|QL) gets a :class:`~secmon.detection.rules.RuleProblem` saying why,
and the others carry on. Correlation rules are resolved against every rule converted in the
same call, so a folder converts with its correlations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.conversion.base import TextQueryBackend
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.processing.conditions import IncludeFieldCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ConvertTypeTransformation, SetStateTransformation
from sigma.rule import SigmaRule

from secmon.detection.loader import line_of, problem_at, rule_files
from secmon.detection.logsource import LogsourceMap, key_of
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files, logsource_item_id
from secmon.detection.rules import RuleProblem
from secmon.store.names import IndexNames
from secmon.store.templates import load_mapping
from secmon.yaml_loader import SafeLoader, yaml_problem

__all__ = ["Conversion", "Converter", "QueryFormat"]


class QueryFormat(StrEnum):
    """The query languages a rule converts to."""

    LUCENE = "lucene"  # Elasticsearch query_string syntax (Kibana's Lucene)
    ESQL = "esql"  # ES|QL, including correlation rules


_BACKENDS: dict[QueryFormat, type[TextQueryBackend]] = {
    QueryFormat.LUCENE: LuceneBackend,
    QueryFormat.ESQL: ESQLBackend,
}
# What pySigma's backends raise on purpose for a rule they cannot convert (NotImplementedError:
# a correlation type or method the backend has no query for).
_CONVERSION_ERRORS = (SigmaError, NotImplementedError)


@dataclass(frozen=True, slots=True)
class Conversion:
    """One rule's queries (one per condition, usually one), or the problem that left it without."""

    path: str
    title: str
    id: str | None
    queries: tuple[str, ...] = ()
    problem: RuleProblem | None = None
    # The pySigma rule as converted, pipeline applied: what the queries were made from.
    sigma_rule: SigmaRule | SigmaCorrelationRule | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.problem is None


class Converter:
    """Converts Sigma rules to one query format with secmon's pipeline; build once, convert many."""

    def __init__(
        self,
        query_format: QueryFormat = QueryFormat.LUCENE,
        *,
        placeholders: Mapping[str, Sequence[str]] | None = None,
        rules_dir: Path = RULES_DIR,
        index: str = IndexNames("secmon").events_pattern,
    ) -> None:
        """``index``: the events an ES|QL query reads (``<index_prefix>-events-*``)."""
        self.query_format = query_format
        logsources = LogsourceMap.load(rules_dir / "logsources.yml")
        self.pipeline = build_pipeline(logsources, default_pipeline_files(rules_dir), placeholders)
        if query_format is QueryFormat.ESQL:
            self.pipeline += _esql_pipeline(index)
        self.backend = _BACKENDS[query_format](self.pipeline)

    def convert_paths(self, paths: Iterable[Path]) -> list[Conversion]:
        """Every rule in the files under ``paths`` (folders searched recursively), in file order."""
        sources: list[tuple[str, str | RuleProblem]] = []
        for path in rule_files(paths):
            try:
                sources.append((str(path), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                sources.append((str(path), RuleProblem(str(path), f"cannot read: {exc}", "io")))
        return self._convert(sources)

    def convert_text(self, text: str, path: str = "<text>") -> list[Conversion]:
        """The rules of one rule file's text."""
        return self._convert([(path, text)])

    def _convert(self, sources: Sequence[tuple[str, str | RuleProblem]]) -> list[Conversion]:
        results: dict[int, Conversion] = {}  # by the position of the rule (or problem) in the files
        rules: list[_Item] = []
        position = 0
        for path, text in sources:
            parsed = text if isinstance(text, RuleProblem) else _parse(path, text)
            if isinstance(parsed, RuleProblem):
                results[position] = Conversion(path, Path(path).stem, None, problem=parsed)
                position += 1
                continue
            assert isinstance(text, str)
            in_rules = {id(error) for rule in parsed.rules for error in rule.errors}  # reported with their rule
            for error in parsed.errors:
                if id(error) in in_rules:
                    continue
                results[position] = Conversion(path, Path(path).stem, None, problem=problem_at(path, text, error))
                position += 1
            for rule in parsed.rules:
                rules.append((position, path, text, rule))
                position += 1

        collection = SigmaCollection([rule for *_, rule in rules], resolve_references=False)
        unresolved: dict[int, SigmaError] = {}  # id() of a correlation → why its references failed
        for *_, rule in rules:
            if isinstance(rule, SigmaCorrelationRule):
                try:  # before any conversion: a rule a correlation uses converts to a part of its query
                    rule.resolve_rule_references(collection)
                except SigmaError as exc:
                    unresolved[id(rule)] = exc
        self.backend.init_processing_pipeline()
        for position, path, text, rule in _referenced_first(rules):
            failure = unresolved.get(id(rule))
            if failure is not None:
                rule_id = str(rule.id) if rule.id else None
                results[position] = Conversion(path, rule.title, rule_id, problem=problem_at(path, text, failure))
            else:
                results[position] = self._convert_rule(rule, path, text)
        return [results[p] for p in sorted(results)]

    def _convert_rule(self, rule: SigmaRule | SigmaCorrelationRule, path: str, text: str) -> Conversion:
        title = rule.title or Path(path).stem
        rule_id = str(rule.id) if rule.id else None

        def failed(problem: RuleProblem) -> Conversion:
            return Conversion(path, title, rule_id, problem=problem, sigma_rule=rule)

        if rule.errors:  # the first error pySigma could place, or its first
            found = [problem_at(path, text, error) for error in rule.errors]
            return failed(next((p for p in found if p.line), found[0]))
        try:
            if isinstance(rule, SigmaCorrelationRule):
                queries = self.backend.convert_correlation_rule(rule)
            else:
                queries = self.backend.convert_rule(rule)
                if rule._backreferences:  # a part of a correlation's query: it is shown whole, on its own
                    states = rule.get_conversion_states()
                    queries = [
                        self.backend.finalize_query(rule, query, n, states[n], self.backend.default_format)
                        for n, query in enumerate(rule.get_conversion_result())
                    ]
        except _CONVERSION_ERRORS as exc:
            return failed(problem_at(path, text, exc, "backend"))
        except Exception as exc:  # a backend bug on one rule must cost that rule only
            return failed(RuleProblem(path, f"the backend failed on it: {exc!r}", "backend"))
        if isinstance(rule, SigmaRule):
            logsource = key_of(rule.logsource.product, rule.logsource.category, rule.logsource.service)
            if not rule.was_processed_by(logsource_item_id(logsource)):
                described = ", ".join(
                    f"{k}={v}" for k, v in zip(("product", "category", "service"), logsource, strict=True) if v
                )
                reason = f"no secmon events for logsource {described or '(empty)'}"
                return failed(RuleProblem(path, reason, "logsource", line_of(text, "logsource:")))
        return Conversion(path, title, rule_id, tuple(str(q) for q in queries), sigma_rule=rule)


_Item = tuple[int, str, str, SigmaRule | SigmaCorrelationRule]


def _referenced_first(items: Sequence[_Item]) -> list[_Item]:
    """Detection rules, then correlations, each after the correlations it refers to."""
    ordered = [item for item in items if not isinstance(item[3], SigmaCorrelationRule)]
    by_rule = {id(item[3]): item for item in items}
    placed: set[int] = set()

    def place(item: _Item) -> None:
        rule = item[3]
        if id(rule) in placed:
            return
        placed.add(id(rule))  # before the references: a cycle stops here (pySigma reports it)
        assert isinstance(rule, SigmaCorrelationRule)
        for reference in rule.referenced_rules:
            target = getattr(reference, "rule", None)  # unset when the reference did not resolve
            if isinstance(target, SigmaCorrelationRule) and id(target) in by_rule:
                place(by_rule[id(target)])
        ordered.append(item)

    for item in items:
        if isinstance(item[3], SigmaCorrelationRule):
            place(item)
    return ordered


def _esql_pipeline(index: str) -> ProcessingPipeline:
    numeric = sorted(_numeric_fields(load_mapping("events")))
    return ProcessingPipeline(
        name="secmon ES|QL",
        priority=100,
        items=[
            ProcessingItem(SetStateTransformation("index", index), identifier="secmon_esql_index"),
            ProcessingItem(  # ES|QL compares keyword with keyword only: "4688", not 4688
                ConvertTypeTransformation("str"),
                identifier="secmon_esql_keyword_numbers",
                field_name_conditions=[IncludeFieldCondition(fields=numeric)],
                field_name_condition_negation=True,
            ),
        ],
    )


def _numeric_fields(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The fields of an Elasticsearch mapping that are not text: numbers, dates, addresses, booleans."""
    for name, spec in mapping.get("properties", {}).items():
        if "properties" in spec:
            yield from _numeric_fields(spec, f"{prefix}{name}.")
        elif spec.get("type", "object") not in ("keyword", "text", "object", "flattened", "wildcard"):
            yield prefix + name


def _parse(path: str, text: str) -> SigmaCollection | RuleProblem:
    try:
        documents = [d for d in yaml.load_all(text, Loader=SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc, text)
        return RuleProblem(path, f"invalid YAML: {problem.reason}", "yaml", problem.line)
    if not documents:
        return RuleProblem(path, "empty file", "yaml")
    if not all(isinstance(d, dict) for d in documents):
        return RuleProblem(path, "not a Sigma rule: each YAML document must be a mapping", "sigma", 1)
    try:
        return SigmaCollection.from_dicts(
            documents, collect_errors=True, source=SigmaRuleLocation(Path(path)), resolve_references=False
        )
    except SigmaError as exc:
        return problem_at(path, text, exc)
    except Exception as exc:  # pySigma failing on odd input must cost this file only
        return RuleProblem(path, f"pySigma could not read it: {exc!r}", "sigma")
