"""The streaming matcher against Elasticsearch, rule by rule, on real Windows events.

Every record of the EVTX samples (../shared/datasets/evtx) is normalized as secmon imports it
and stored in a real Elasticsearch node through secmon's templates and bulk writer, under an
index prefix of its own. Every SigmaHQ Windows rule is loaded by the streaming matcher and
converted by pySigma's Lucene backend with secmon's pipeline (``secmon rules convert``); each
query runs as the backend's ``dsl_lucene`` format runs it (``query_string``, ``analyze_wildcard``),
and the ids it finds must be the ids of the events the matcher matched.

Where they differ, the difference must be one Elasticsearch cannot help, and the test checks
that it is. Each :class:`Limitation` is a rewrite of the rule or the event that gives the
matcher Elasticsearch's semantics (case-sensitive comparison, values over 1024 characters not
indexed, ...). A difference is explained when the matcher, so rewritten with the fewest
limitations, gives Elasticsearch's verdict on that event: "ES misses it because the value is
longer than 1024 characters" is checked by dropping the long values and matching again. Any
other difference fails the test with the rule, the event and the values of the fields the
rule reads: a bug in the matcher, the pipeline or the backend.

Queries are sent in ``_msearch`` batches, each only to the indices that hold its logsource's
events (found by one aggregation per logsource): a query ANDs its logsource's selection (the
pipeline adds it), so no other index can hold a hit, and wildcard queries over every index
cost Elasticsearch a minute. Loading the SigmaHQ rules is cached in pytest's cache folder.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from elasticsearch import AsyncElasticsearch
from sigma import conditions as sc
from sigma import types as st
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_logsource_pipeline
from sigma.processing.pipeline import ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaLogSource, SigmaRule

from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.collect.sources.evtx import read_evtx
from secmon.collect.transforms.normalize_winlog import normalize_evtx
from secmon.config import ElasticsearchSettings, WriterSettings
from secmon.detection.compile import compile_node
from secmon.detection.convert import Conversion, Converter
from secmon.detection.detector import Detector, load_detector
from secmon.detection.fields import EventView
from secmon.detection.ir import AllOf, AnyOf, Leaf, Node, Not, Op
from secmon.detection.logsource import LogsourceKey, key_of
from secmon.detection.pipelines import windows_field_names
from secmon.detection.translate import translate
from secmon.store import Document, IndexNames, Outcome, install_templates

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
EVTX = DATASETS / "evtx"
WINDOWS_RULES = DATASETS / "sigma" / "rules" / "windows"
K = TypeVar("K")
IGNORE_ABOVE = 1024  # secmon/store/mappings/events.json: every keyword field
SEARCH_BATCH = 50


class Limitation(StrEnum):
    """A reason Elasticsearch answers a converted query differently from the Sigma specification."""

    # Keyword fields compare case-sensitively, and the Lucene backend emits no case-insensitive
    # query (query_string has no such option); Sigma strings are case-insensitive.
    CASE = "case"
    # A keyword value over ignore_above (1024) characters is not indexed: no query finds it.
    IGNORE_ABOVE = "ignore_above"
    # EventData fields are keyword, not ip: ``IpAddress:10.0.0.0\/8`` is a term, not a range.
    CIDR = "cidr"
    # A Lucene regular expression matches the whole value; Sigma's ``re`` searches in it.
    REGEX_ANCHORED = "regex_anchored"
    # A value without a field: Elasticsearch searches every indexed field (query_string's
    # default_field ``*``); the matcher searches ``message`` and the raw record, which is not indexed.
    KEYWORDS = "keywords"


@dataclass(frozen=True, slots=True)
class Difference:
    """An event one side matched and the other did not, and what explains it (nothing: a bug)."""

    rule: Conversion
    event_id: str
    es_matched: bool
    explained_by: frozenset[Limitation] | None
    note: str = ""

    def describe(self, samples: Mapping[str, dict[str, Any]]) -> str:
        side = "Elasticsearch only" if self.es_matched else "the matcher only"
        assert isinstance(self.rule.sigma_rule, SigmaRule)
        view = EventView(samples[self.event_id])
        values = {f: view.texts(f) for f in sorted(rule_fields(self.rule.sigma_rule))}
        return f"{self.rule.path}: event {self.event_id} matched by {side}. {self.note}Fields: {values}"


def _reason(difference: Difference) -> str:
    limits = difference.explained_by
    return "+".join(sorted(limits)) if limits is not None else "UNEXPLAINED"


@dataclass(slots=True)
class Comparison:
    """Everything the differential found, for the assertions and the summary."""

    events: int = 0
    rules: int = 0
    not_converted: list[Conversion] = field(default_factory=list)
    not_loaded: list[Conversion] = field(default_factory=list)  # converted, but the matcher rejects it
    compared: int = 0
    queried: int = 0
    with_hits: int = 0
    equal: int = 0
    es_errors: list[str] = field(default_factory=list)
    differences: dict[str, list[Difference]] = field(default_factory=dict)  # by rule key
    # For the comparison with pySigma's own Windows pipelines: where the samples are stored, the
    # rules compared, and the ids each one's query (secmon's pipeline) found.
    names: IndexNames | None = None
    converted: list[Conversion] = field(default_factory=list)
    es_hits: dict[str, set[str]] = field(default_factory=dict)

    def unexplained(self) -> list[Difference]:
        return [d for found in self.differences.values() for d in found if d.explained_by is None]

    def reasons(self) -> Counter[str]:
        """Differing rules by what explains them (several limitations joined by +)."""
        counted: Counter[str] = Counter()
        for found in self.differences.values():
            counted[", ".join(sorted({_reason(d) for d in found}))] += 1
        return counted

    def summary(self) -> str:
        not_converted = dict(Counter(c.problem.kind for c in self.not_converted if c.problem))
        lines = [
            f"differential: {self.events:,} EVTX records indexed, {self.rules:,} SigmaHQ Windows rules, "
            f"{self.rules - len(self.not_converted):,} converted to Lucene "
            f"({len(self.not_converted)} not: {not_converted}),"
            f" {len(self.not_loaded)} converted but not loaded by the matcher",
            f"  {self.compared:,} rules compared, {self.queried:,} of them by a query (the others' logsource has no "
            f"stored event); {self.with_hits} with hits on either side; {self.equal:,} equal, "
            f"{len(self.differences)} differing, by reason:",
        ]
        lines += [f"    {reason}: {count} rules" for reason, count in self.reasons().most_common()]
        events = Counter(_reason(d) for found in self.differences.values() for d in found)
        lines.append(f"  differing (rule, event) pairs: {dict(events.most_common())}")
        lines.append(f"  unexplained: {len(self.unexplained())}, Elasticsearch errors: {len(self.es_errors)}")
        return "\n".join(lines)


# -- what Elasticsearch sees -------------------------------------------------------------------


def load_samples() -> dict[str, dict[str, Any]]:
    """Every EVTX record normalized as ``secmon import evtx`` does, by a readable, unique id."""
    events: dict[str, dict[str, Any]] = {}
    for path in sorted(EVTX.rglob("*.evtx")):
        name = path.relative_to(EVTX)
        for n, record in enumerate(read_evtx(path, on_failure=lambda failure: None)):
            event_id = f"{name}#{record.record_id}"
            if event_id in events:  # a sample with a repeated record id
                event_id += f"/{n}"
            events[event_id] = normalize_evtx(record.event, path=str(path))
    return events


async def index_samples(es: AsyncElasticsearch, settings: ElasticsearchSettings, samples: dict[str, Any]) -> IndexNames:
    names = IndexNames(f"{settings.index_prefix}-differential")
    await install_templates(es, settings.model_copy(update={"index_prefix": names.prefix}))
    docs = [Document(names.events(e["event"].get("dataset")), i, e) for i, e in samples.items()]
    async with BulkWriter(es, WriterSettings(), names) as writer:  # type: ignore[call-arg]
        outcomes = await writer.write(docs)
    assert Counter(outcomes) == {Outcome.STORED: len(docs)}, "every sample event must be stored"
    await es.indices.refresh(index=names.events_pattern)
    assert (await es.count(index=names.events_pattern))["count"] == len(docs)
    return names


async def indices_holding(
    es: AsyncElasticsearch, names: IndexNames, queries: Mapping[K, dict[str, Any]]
) -> dict[K, str]:
    """The stored indices holding events each query finds (comma-separated, "" for none), by its key."""
    searches: list[dict[str, Any]] = []
    for query in queries.values():
        searches += [{"index": names.events_pattern}, {"size": 0, "query": query, "aggs": _BY_INDEX}]
    answers = (await es.msearch(searches=searches))["responses"]
    assert all("error" not in answer for answer in answers), answers
    return {
        key: ",".join(sorted(b["key"] for b in answer["aggregations"]["indices"]["buckets"]))
        for key, answer in zip(queries, answers, strict=True)
    }


async def indices_by_logsource(
    es: AsyncElasticsearch, names: IndexNames, detector: Detector, keys: set[LogsourceKey]
) -> dict[LogsourceKey, str]:
    """The stored indices holding events of each logsource (as Elasticsearch selects them)."""
    queries = {}
    for key in keys:
        selection = detector.logsources.selections[key].as_conditions()
        queries[key] = {"bool": {"filter": [{"terms": {f: values}} for f, values in selection.items()]}}
    return await indices_holding(es, names, queries)


_BY_INDEX = {"indices": {"terms": {"field": "_index", "size": 1000}}}


async def search(
    es: AsyncElasticsearch, jobs: list[tuple[str, str, str]]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """The ids each ``(key, index, lucene query)`` finds, and the errors of those that failed (retried once)."""
    found: dict[str, set[str]] = {}
    failed: dict[str, str] = {}
    client = es.options(request_timeout=600)
    pending = jobs
    for _attempt in range(2):
        failed = {}
        for start in range(0, len(pending), SEARCH_BATCH):
            batch = pending[start : start + SEARCH_BATCH]
            searches: list[dict[str, Any]] = []
            for _, index, query in batch:
                body = {"query_string": {"query": query, "analyze_wildcard": True}}  # the backend's dsl_lucene
                searches += [{"index": index}, {"query": body, "size": 10_000, "_source": False}]
            answers = (await client.msearch(searches=searches))["responses"]
            for (key, _, _), answer in zip(batch, answers, strict=True):
                if "error" in answer or answer["_shards"]["failed"] or answer["timed_out"]:
                    failed[key] = str(answer.get("error") or answer["_shards"].get("failures"))[:500]
                    continue
                hits = answer["hits"]
                assert hits["total"]["value"] == len(hits["hits"]) < 10_000, "a query found more than it returned"
                found[key] = {hit["_id"] for hit in hits["hits"]}
        pending = [job for job in jobs if job[0] in failed]
        if not pending:
            break
    return found, failed


# -- Elasticsearch's semantics, given to the matcher -----------------------------------------------

Predicate = Callable[[EventView], bool]
SUBSETS = [frozenset(s) for n in range(1, len(Limitation) + 1) for s in itertools.combinations(Limitation, n)]


def es_predicate(rule: SigmaRule, limits: frozenset[Limitation]) -> Predicate:
    """The rule as the matcher would match it with Elasticsearch's ``limits``."""
    conditions = [condition.parsed for condition in rule.detection.parsed_condition]  # a fresh tree each time
    if Limitation.CASE in limits:
        conditions = [_cased(c) for c in conditions]
    nodes = [_es_leaves(translate(c), limits) for c in conditions]
    return compile_node(nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes)))


def _cased(condition: Any) -> Any:
    if isinstance(condition, sc.ConditionAND | sc.ConditionOR | sc.ConditionNOT):
        condition.args = [_cased(arg) for arg in condition.args]
    elif isinstance(condition, sc.ConditionFieldEqualsValueExpression | sc.ConditionValueExpression):
        condition.value = _cased_value(condition.value)
    return condition


def _cased_value(value: Any) -> Any:
    if isinstance(value, st.SigmaExpansion):
        return st.SigmaExpansion([_cased_value(v) for v in value.values])
    if isinstance(value, st.SigmaString) and not isinstance(value, st.SigmaCasedString):
        return st.SigmaCasedString.from_sigma_string(value)
    return value


def _es_leaves(node: Node, limits: frozenset[Limitation]) -> Node:
    if isinstance(node, Not):
        return Not(_es_leaves(node.item, limits))
    if isinstance(node, AllOf | AnyOf):
        return type(node)(tuple(_es_leaves(item, limits) for item in node.items))
    if node.op is Op.CIDR and Limitation.CIDR in limits:  # the network, as a literal term
        return Leaf(node.field, Op.EQ, node.values, cased=True)
    if node.op is Op.RE and Limitation.REGEX_ANCHORED in limits:
        return Leaf(node.field, Op.RE, tuple(rf"\A(?:{v})\z" for v in node.values), node.cased, node.flags)
    return node


def es_event(event: dict[str, Any], limits: frozenset[Limitation]) -> dict[str, Any]:
    """The event as Elasticsearch's ``limits`` let a query see it."""
    if Limitation.IGNORE_ABOVE in limits:
        event = _indexed_only(event, "")
    if Limitation.KEYWORDS in limits:  # the matcher reads keywords from event.original: put there what ES reads
        event = {**event, "event": {**event.get("event", {}), "original": list(_strings(event, ""))}}
        event.pop("message", None)
    return event


def _too_long(value: Any) -> bool:
    # ignore_above counts Java chars: UTF-16 code units.
    return isinstance(value, str) and len(value.encode("utf-16-le")) // 2 > IGNORE_ABOVE


def _indexed_only(node: dict[str, Any], prefix: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            kept[key] = _indexed_only(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            if values := [v for v in value if not _too_long(v)]:
                kept[key] = values
        elif not _too_long(value) or f"{prefix}{key}" == "event.original":  # not indexed at all anyway
            kept[key] = value
    return kept


def _strings(node: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if name in ("event.original", "message"):  # not indexed; a text field (Windows events have none)
            continue
        if isinstance(value, dict):
            yield from _strings(value, name + ".")
        else:
            yield from (v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))


def rule_fields(rule: SigmaRule) -> set[str]:
    fields: set[str] = set()

    def walk(node: Node) -> None:
        if isinstance(node, Leaf):
            fields.add(node.field or "event.original")
        elif isinstance(node, Not):
            walk(node.item)
        else:
            for item in node.items:
                walk(item)

    for condition in rule.detection.parsed_condition:
        walk(translate(condition.parsed))
    return fields


def explain(
    conversion: Conversion, event_id: str, event: dict[str, Any], es_matched: bool, matcher_matched: bool
) -> Difference:
    """The fewest limitations under which the matcher gives Elasticsearch's verdict on the event."""
    rule = conversion.sigma_rule
    assert isinstance(rule, SigmaRule)
    if es_predicate(rule, frozenset())(EventView(event)) is not matcher_matched:
        note = "The matcher's index or routing disagrees with the rule's own condition. "
        return Difference(conversion, event_id, es_matched, None, note)
    for limits in SUBSETS:
        if es_predicate(rule, limits)(EventView(es_event(event, limits))) is es_matched:
            return Difference(conversion, event_id, es_matched, limits)
    return Difference(conversion, event_id, es_matched, None)


# -- the run -----------------------------------------------------------------------------------


def convert_and_match(
    samples: dict[str, dict[str, Any]], cache_dir: Path
) -> tuple[list[Conversion], Detector, dict[str, set[str]]]:
    """The Lucene conversion of every Windows rule, the matcher, and the ids of the events each rule matched."""
    conversions = Converter().convert_paths([WINDOWS_RULES])
    detector = load_detector([WINDOWS_RULES], cache_dir=cache_dir)
    hits: dict[str, set[str]] = {}
    for event_id, event in samples.items():
        for rule in detector.match(event):
            hits.setdefault(rule.id, set()).add(event_id)
    return conversions, detector, hits


def rule_key(conversion: Conversion) -> str:
    return conversion.id or f"file:{conversion.path}"  # as the loader names a rule without an id


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, Any]]:
    return load_samples()


@pytest.fixture(scope="module")
async def comparison(
    es: AsyncElasticsearch,
    es_settings: ElasticsearchSettings,
    samples: dict[str, dict[str, Any]],
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Comparison:
    cache = getattr(pytestconfig, "cache", None)
    cache_dir = cache.mkdir("secmon-rule-cache") if cache else tmp_path_factory.mktemp("rule-cache")
    # Converting 2,400 rules is CPU work in Python: it runs while Elasticsearch indexes.
    (conversions, detector, hits), names = await asyncio.gather(
        asyncio.to_thread(convert_and_match, samples, cache_dir), index_samples(es, es_settings, samples)
    )
    result = Comparison(events=len(samples), rules=len(conversions), names=names)
    loaded = {rule.id for rule in detector.rules}
    converted = []
    for conversion in conversions:
        if not conversion.ok:
            result.not_converted.append(conversion)
        elif rule_key(conversion) not in loaded:
            result.not_loaded.append(conversion)
        else:
            converted.append(conversion)

    def logsource(c: Conversion) -> LogsourceKey:
        assert isinstance(c.sigma_rule, SigmaRule)
        return key_of(c.sigma_rule.logsource.product, c.sigma_rule.logsource.category, c.sigma_rule.logsource.service)

    routes = await indices_by_logsource(es, names, detector, {logsource(c) for c in converted})
    # A rule whose logsource has no stored event cannot match in Elasticsearch: its query requires the selection.
    jobs = [(rule_key(c), routes[logsource(c)], c.queries[0]) for c in converted if routes[logsource(c)]]
    assert all(len(c.queries) == 1 for c in converted), "a rule with several conditions needs one search each"
    es_hits, failed = await search(es, jobs)
    result.converted, result.es_hits = converted, es_hits
    result.queried = len(jobs) - len(failed)
    result.es_errors = [f"{key}: {error}" for key, error in failed.items()]

    for conversion in converted:
        key = rule_key(conversion)
        if key in failed:
            continue
        result.compared += 1
        found, matched = es_hits.get(key, set()), hits.get(key, set())
        result.with_hits += bool(found or matched)
        if found == matched:
            result.equal += 1
            continue
        result.differences[key] = [
            explain(conversion, event_id, samples[event_id], event_id in found, event_id in matched)
            for event_id in sorted(found ^ matched)
        ]
    return result


def test_elasticsearch_finds_what_the_streaming_matcher_matches(
    comparison: Comparison, samples: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + comparison.summary())
    assert not comparison.es_errors, comparison.es_errors
    unexplained = [d.describe(samples) for d in comparison.unexplained()]
    assert not unexplained, "\n".join(unexplained)


def test_the_comparison_covers_the_rule_set(comparison: Comparison) -> None:
    # Not vacuous: nearly every rule was compared, and hundreds of them fire on the samples.
    assert comparison.events >= 3_900
    assert comparison.compared >= 2_300
    assert comparison.with_hits >= 200
    assert comparison.not_loaded == []
    assert {c.problem.kind for c in comparison.not_converted if c.problem} <= {"logsource", "backend"}


# -- the logsource selection, against pySigma's own Windows pipelines ----------------------------

# secmon's table also selects PowerShell 7's channel for the PowerShell categories (rules/logsources.yml);
# pySigma's Windows pipeline selects Windows PowerShell's only.
SECMON_ONLY_CHANNELS = {"PowerShellCore/Operational"}


@dataclass(frozen=True, slots=True)
class PySigmaQuery:
    """A rule's Lucene query with pySigma's Windows selection, and a query for that selection's events alone."""

    rule: str
    query: str
    selection: str


def pysigma_windows_queries(paths: list[str]) -> dict[str, PySigmaQuery]:
    """Each Windows rule's Lucene query with pySigma's Sysmon and Windows logsource pipelines, by rule key.

    The event selection (Sysmon event ids, channels) is pySigma's, not secmon's logsource table;
    only field names are secmon's, as it stores Windows events. A rule neither pipeline gives a
    selection is left out.
    """
    pipeline = (
        sysmon_pipeline()
        + windows_logsource_pipeline()
        + ProcessingPipeline(name="secmon Windows field names", priority=20, items=windows_field_names())
    )
    selecting = {
        item.identifier for item in pipeline.items if isinstance(item.transformation, AddConditionTransformation)
    }
    backend = LuceneBackend(pipeline)
    selections: dict[tuple[str | None, ...], str] = {}

    def selection_of(logsource: SigmaLogSource) -> str:
        # Every Windows event has an event id: a rule asking only that selects what its logsource selects.
        key = (logsource.product, logsource.category, logsource.service)
        if key not in selections:
            rule = SigmaRule.from_dict(
                {
                    "title": "selection",
                    "logsource": {k: v for k, v in zip(("product", "category", "service"), key, strict=True) if v},
                    "detection": {"any": {"EventID|exists": True}, "condition": "any"},
                }
            )
            (selections[key],) = backend.convert_rule(rule)
        return selections[key]

    queries = {}
    for path in paths:
        for rule in SigmaCollection.from_yaml(Path(path).read_text(encoding="utf-8")).rules:
            if not isinstance(rule, SigmaRule):
                continue
            logsource = rule.logsource
            (query,) = backend.convert_rule(rule)
            if any(rule.was_processed_by(identifier) for identifier in selecting):
                key = str(rule.id) if rule.id else f"file:{path}"
                queries[key] = PySigmaQuery(key, str(query), selection_of(logsource))
    return queries


async def test_pysigma_windows_pipelines_select_the_events_secmon_selects(
    comparison: Comparison,
    es: AsyncElasticsearch,
    samples: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The differential above compares the matcher with queries made with secmon's own selection;
    # a wrong selection (a Sysmon rule ANDed with the packet flows' dataset) passed it on both
    # sides. Here every rule's events are those of pySigma's selection instead.
    assert comparison.names is not None
    paths = sorted({c.path for c in comparison.converted})
    theirs = await asyncio.to_thread(pysigma_windows_queries, paths)
    compared = [rule_key(c) for c in comparison.converted if rule_key(c) in theirs]
    selections = {theirs[key].selection for key in compared}
    routes = await indices_holding(es, comparison.names, {q: {"query_string": {"query": q}} for q in selections})
    jobs = [
        (key, routes[theirs[key].selection], theirs[key].query) for key in compared if routes[theirs[key].selection]
    ]
    found, failed = await search(es, jobs)
    assert not failed, failed
    differing = {}
    for key in compared:
        ours, pysigma = comparison.es_hits.get(key, set()), found.get(key, set())
        only_ours = {e for e in ours - pysigma if samples[e]["winlog"]["channel"] not in SECMON_ONLY_CHANNELS}
        if only_ours or pysigma - ours:
            differing[key] = {"secmon only": sorted(only_ours), "pySigma only": sorted(pysigma - ours)}
    with capsys.disabled():
        with_hits = sum(bool(found.get(key) or comparison.es_hits.get(key)) for key in compared)
        print(
            f"\npySigma's Windows pipelines: {len(compared):,} of {len(comparison.converted):,} rules compared, "
            f"{with_hits} with hits, {len(differing)} selecting other events than secmon's table"
        )
    assert differing == {}
    # Not vacuous: nearly every converted rule has pySigma's selection, and many find events.
    assert len(compared) >= 0.95 * len(comparison.converted)
    network = {rule_key(c) for c in comparison.converted if "/network_connection/" in c.path}
    assert any(found.get(key) for key in network), "Sysmon network connection rules find their events"
    assert sum(bool(found.get(key)) for key in compared) >= 150


# -- the explanations themselves ---------------------------------------------------------------


def process_creation_rule(detection: str) -> Conversion:
    text = (
        "title: t\nid: 6f0c2a4e-1b7d-4c55-9e0a-3d2b8c7f1a90\n"
        "logsource: {product: windows, category: process_creation}\n"
        f"detection:\n  selection:\n    {detection}\n  condition: selection\n"
    )
    (conversion,) = Converter().convert_text(text, "t.yml")
    assert conversion.ok, conversion.problem
    return conversion


def sysmon_process(**event_data: str) -> dict[str, Any]:
    winlog = {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1", "event_data": event_data}
    return {"winlog": winlog, "event": {"original": orjson.dumps({"EventData": event_data}).decode()}}


@pytest.mark.parametrize(
    ("detection", "event_data", "limitation"),
    [
        ("Image|endswith: '\\cmd.exe'", {"Image": "C:\\WINDOWS\\CMD.EXE"}, Limitation.CASE),
        ("CommandLine|contains: ' -enc '", {"CommandLine": "powershell -enc " + "A" * 1100}, Limitation.IGNORE_ABOVE),
        ("DestinationIp|cidr: 10.0.0.0/8", {"DestinationIp": "10.1.2.3"}, Limitation.CIDR),
        ("CommandLine|re: 'whoami'", {"CommandLine": "cmd /c whoami /all"}, Limitation.REGEX_ANCHORED),
        ("'|all': [EventData]", {"Image": "C:\\Windows\\cmd.exe"}, Limitation.KEYWORDS),  # a key of the raw record
    ],
)
def test_a_limitation_explains_the_miss_it_names(
    detection: str, event_data: dict[str, str], limitation: Limitation
) -> None:
    conversion = process_creation_rule(detection)
    event = sysmon_process(**event_data)
    assert isinstance(conversion.sigma_rule, SigmaRule)
    assert es_predicate(conversion.sigma_rule, frozenset())(EventView(event)), "the matcher matches it"

    difference = explain(conversion, "e", event, es_matched=False, matcher_matched=True)

    assert difference.explained_by == frozenset({limitation})


def test_a_difference_no_limitation_explains_is_reported_with_the_values() -> None:
    conversion = process_creation_rule("Image|endswith: '\\cmd.exe'")
    event = sysmon_process(Image="C:\\Windows\\System32\\cmd.exe")

    missed = explain(conversion, "e", event, es_matched=False, matcher_matched=True)
    invented = explain(conversion, "e", event, es_matched=True, matcher_matched=False)

    assert missed.explained_by is None
    assert "Elasticsearch only" not in missed.describe({"e": event})
    assert "'winlog.event_data.Image': ('C:\\\\Windows\\\\System32\\\\cmd.exe',)" in missed.describe({"e": event})
    assert invented.explained_by is None and "disagrees with the rule's own condition" in invented.note
