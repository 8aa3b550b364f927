"""The parsers under fuzz and what must hold of their answers, whatever the input.

For every input: no exception escapes, and the answer can be stored (orjson encodes it, as the
disk buffer does). A rejected input is marked with what and where: a parse-failure tag and
``error.message`` on an event that keeps the line, a refusal naming its line of a ``_bulk`` body,
a failure report naming the EVTX file, a counted drop reason for a frame, a
:class:`~secmon.detection.rules.RuleProblem` with a line, a :class:`~secmon.errors.ConfigError`
naming file, line and key. A valid input (:mod:`.cases`) gives back exactly its fields.

Each property is a ``check_*`` function that raises :class:`PropertyViolation`; the tests in
``tests/fuzz`` call them on what Hypothesis draws, and :class:`Target` subclasses call them on
what ``secmon bench fuzz`` draws.
"""

from __future__ import annotations

import atexit
import itertools
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import orjson

from secmon.bench.fuzz.cases import (
    ABSENT,
    RFC3164_EXAMPLES,
    RFC5424_EXAMPLES,
    BrokenRule,
    BulkCase,
    Case,
    ConfigCase,
    FrameCase,
    SigmaCase,
    apache_access_case,
    auditd_case,
    beats_case,
    broken_config_case,
    broken_sigma_case,
    bulk_case,
    config_case,
    cron_case,
    frame_case,
    iptables_case,
    json_line_case,
    rfc3164_case,
    rfc5424_case,
    sigma_case,
    sshd_case,
    sudo_case,
)
from secmon.bench.fuzz.damage import damage_bytes, damage_text
from secmon.bench.fuzz.draw import Draw
from secmon.collect.transforms.normalize import normalize
from secmon.events import PARSE_FAILURE_TAG, Event, Record, get_field
from secmon.store import source_json

DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets"
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z")

Input = TypeVar("Input")


class PropertyViolation(AssertionError):
    """A parser's answer broke a property: what was expected, and what came instead."""


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise PropertyViolation(problem)


def differences(event: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Each expected field the event does not hold as expected, as ``name: expected …, got …``."""
    problems = []
    for name, value in expected.items():
        found = get_field(event, name, ABSENT)
        if found != value or (value is not ABSENT and found is ABSENT):
            problems.append(f"{name}: expected {value!r}, got {found!r}")
    return problems


def check_fields(event: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """The event holds every expected field with its value (and none of those expected ABSENT)."""
    problems = differences(event, expected)
    _require(not problems, "; ".join(problems))


def check_storable(document: Any) -> None:
    """The document can be written to the disk buffer and sent to Elasticsearch (orjson encodes it)."""
    try:
        source_json(document)
    except (TypeError, ValueError) as error:
        raise PropertyViolation(f"the event cannot be stored: {error}") from None


@cache
def _pipeline() -> Any:
    """A pipeline without stages: what it makes of an event is what a source would buffer."""
    from secmon.collect.buffer import DiskBuffer
    from secmon.collect.telemetry import Telemetry
    from secmon.collect.topology import Pipeline
    from secmon.store import IndexNames

    folder = tempfile.mkdtemp(
        prefix="secmon-fuzz-pipeline-", dir=_memory_folder()
    )  # holds no frame: nothing is appended
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Pipeline(IndexNames("fuzz"), DiskBuffer(Path(folder)), Telemetry())


def check_stored(events: list[Event], fmt: str = "auto") -> list[dict[str, Any]]:
    """What the pipeline buffers of ``events`` (stamped, named, encoded), decoded: it must take every one."""
    from secmon.collect.topology import SourceContext

    try:
        frames = _pipeline().encode_events(events, [None] * len(events), SourceContext("fuzz", fmt))
    except Exception as error:  # the pipeline has no such safety net: one bad event fails its whole batch
        raise PropertyViolation(f"the pipeline cannot take the event: {type(error).__name__}: {error}") from None
    return [orjson.loads(frame.partition(b"\n")[2]) for frame in frames]


# -- log lines ---------------------------------------------------------------------------------


def parse_line(line: str, fmt: str, received: float = 0.0) -> Event:
    """What a source's pipeline makes of one line in ``fmt``, before it is stored."""
    return normalize(Record(line, received=received), fmt)


def check_line_event(line: str, fmt: str, event: Event) -> dict[str, Any]:
    """Whatever the line, its event keeps it, is dated and typed, says why when not understood, and is stored.

    Returns the event as the pipeline stores it.
    """
    meta = event.get("event")
    if not isinstance(meta, dict):
        raise PropertyViolation("the event has no event object")
    if fmt not in ("json", "beats", "evtx"):  # a shipped document may carry its own original, as it is
        _require(meta.get("original") == line, "event.original is not the line")
    _require(isinstance(meta.get("dataset"), str), f"event.dataset {meta.get('dataset')!r} is not text")
    timestamp = event.get("@timestamp")
    if fmt in ("json", "beats"):
        # A shipped document's own @timestamp is kept as sent; Elasticsearch dead-letters one it cannot read.
        _require(isinstance(timestamp, str), f"@timestamp {timestamp!r}")
    else:
        _require(isinstance(timestamp, str) and bool(_ISO_UTC.fullmatch(timestamp)), f"@timestamp {timestamp!r}")
    tags = event.get("tags", [])
    _require(isinstance(tags, list), f"tags {tags!r} is not a list")
    if PARSE_FAILURE_TAG in tags:
        reason = get_field(event, "error.message")
        _require(isinstance(reason, str) and len(reason) > 3, f"tagged as not understood without a reason: {reason!r}")
    return check_stored([event], fmt)[0]


def check_line(case: Case[str], fmt: str) -> dict[str, Any]:
    """Parse one line as ``fmt``: the invariants always, the case's fields (as stored) when it is valid."""
    stored = check_line_event(case.data, fmt, parse_line(case.data, fmt, case.received))
    check_fields(stored, case.expected)
    return stored


# -- _bulk bodies ------------------------------------------------------------------------------


def check_bulk(body: str, default_index: str = "logs") -> list[Any]:
    """The items of a bulk body account for every line; each refusal has a reason and a 4xx (the line is the item's)."""
    # The pure half of the _bulk endpoint: the body split into actions, each with its document.
    from secmon.collect.sources.http.bulk import bulk_items
    from secmon.collect.sources.http.intake import Refused, json_object

    lines = body.split("\n")
    items = list(bulk_items(lines, default_index))
    covered: set[int] = set()
    for item in items:
        _require(item.line not in covered, f"line {item.line} is in two items")
        covered.add(item.line)
        if item.source is not None:
            covered.add(item.line + 1)
        if item.refused is None:
            try:
                document = json_object(item.source or "")
            except Refused as refused:
                _require(len(refused.reason) > 3, f"line {item.line + 1} refused without a reason")
            else:
                check_storable(document)  # what the endpoint stores of it (it is re-encoded)
        else:
            _require(len(item.refused.reason) > 3, f"item of line {item.line} refused without a reason")
            _require(400 <= item.refused.status < 500, f"item of line {item.line} refused with {item.refused.status}")
    # Every line is an action or its document: none is dropped without a word.
    missing = [number for number, line in enumerate(lines, 1) if line.strip() and number not in covered]
    _require(not missing, f"lines {missing[:5]} are in no item")
    return items


def check_bulk_case(case: BulkCase) -> None:
    """A valid body gives back each action's op, index, id and document, none refused."""
    from secmon.collect.sources.http.intake import json_object

    items = check_bulk(case.body, case.default_index)
    found = [(i.op, i.index, i.id, i.line, i.refused and i.refused.reason) for i in items]
    wanted = [(s.op, s.index, s.id, s.line, None) for s in case.items]
    _require(found == wanted, f"items {found} instead of {wanted}")
    for item, spec in zip(items, case.items, strict=True):
        _require(json_object(item.source or "") == spec.document, f"the document of line {spec.line} changed")


# -- packets -----------------------------------------------------------------------------------


def check_frame(data: bytes, linktype: int) -> Any:
    """A frame decodes to a packet within it, or is counted under exactly one drop reason."""
    from secmon.collect.transforms.packets import DecodeStats, Packet, decode_frame

    stats = DecodeStats()
    packet = decode_frame(0.0, data, linktype, stats)
    drops = sum(stats.dropped.values())
    if packet is None:
        _require(drops == 1 and stats.decoded == 0, f"dropped with {dict(stats.dropped)} counted")
    else:
        _require(drops == 0 and stats.decoded == 1, f"decoded with {dict(stats.dropped)} counted")
        if isinstance(packet, Packet):
            _require(packet.length == len(data), f"length {packet.length} of a {len(data)}-byte frame")
            _require(packet.payload in data, "the payload is not a part of the frame")
    return packet


def check_frame_case(case: FrameCase) -> None:
    from secmon.collect.transforms.packets import Packet

    packet = check_frame(case.data, case.linktype)
    _require(isinstance(packet, Packet), f"{packet!r} instead of a packet")
    problems = [
        f"{name}: expected {value!r}, got {getattr(packet, name)!r}"
        for name, value in case.expected.items()
        if getattr(packet, name) != value
    ]
    _require(not problems, "; ".join(problems))


# -- Sigma rules -------------------------------------------------------------------------------


@cache
def sigma_pipeline() -> Any:
    """secmon's pySigma processing pipeline and logsource table, built once (it takes a second)."""
    from secmon.detection.logsource import LogsourceMap
    from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files

    logsources = LogsourceMap.load(RULES_DIR / "logsources.yml")
    return build_pipeline(logsources, default_pipeline_files(RULES_DIR), None), logsources


def check_rule_text(text: str, path: str = "fuzz.yml") -> list[Any]:
    """Any text loads to rules or to problems that say what, and where when the YAML itself is broken."""
    from secmon.detection.loader import load_text
    from secmon.detection.rules import Rule, RuleProblem

    items = load_text(text, path, sigma_pipeline()[0])
    # Correlation rules are left to secmon.detection.correlation, which loads them with the rules they name.
    _require(bool(items) or "correlation" in text, "neither a rule nor a problem")
    for item in items:
        _require(isinstance(item, Rule | RuleProblem), f"{item!r}")
        if isinstance(item, RuleProblem):
            _require(len(item.reason) > 3 and item.path == path, f"unclear problem {item!r}")
            if item.kind == "yaml" and item.reason != "empty file":
                _require(item.line is not None, f"a YAML problem without its line: {item.reason}")
        else:
            check_storable({"title": item.title, "id": item.id})
    return items


def check_sigma_case(case: SigmaCase) -> None:
    """A generated rule loads as itself and matches the event it was made for, and not the other."""
    from secmon.detection.detector import Detector
    from secmon.detection.rules import Rule, RuleSet

    items = check_rule_text(case.text)
    _require(len(items) == 1 and isinstance(items[0], Rule), f"{items!r} instead of one rule")
    rule = items[0]
    got = (rule.id, rule.title, rule.level)
    _require(got == (case.rule_id, case.title, case.level), f"{got} instead of {case.rule_id, case.title, case.level}")
    detector = Detector(RuleSet(rules=[rule]), sigma_pipeline()[1])
    _require([r.id for r in detector.match(case.matching)] == [rule.id], f"does not match {case.matching}")
    _require(detector.match(case.not_matching) == [], f"matches {case.not_matching}")


def check_broken_rule(broken: BrokenRule) -> None:
    """A rule broken on one line is refused with a problem on that line that says what is wrong."""
    from secmon.detection.rules import RuleProblem

    problems = [item for item in check_rule_text(broken.text) if isinstance(item, RuleProblem)]
    _require(bool(problems), f"{broken.what}: loaded")
    found = [(p.line, p.reason) for p in problems]
    _require(any(line == broken.line and broken.said in reason for line, reason in found), f"{broken.what}: {found}")


# -- the configuration -------------------------------------------------------------------------


def check_config_text(text: str, path: Path) -> Any:
    """Any configuration text loads, or fails with a ConfigError whose every problem names file and line."""
    from secmon.config import load_settings
    from secmon.errors import ConfigError

    path.write_text(text, encoding="utf-8")
    try:
        return load_settings(path, environ={})
    except ConfigError as error:
        message = str(error)
        located = re.compile(rf"{re.escape(str(path))}:\d+(?::\d+)?: \S")
        problems = message.splitlines()[1:] if message.startswith("invalid configuration:") else [message]
        for problem in problems:
            _require(bool(located.match(problem.strip())), f"a problem without file and line: {problem.strip()!r}")
        return error


def check_config_case(case: ConfigCase, path: Path) -> None:
    """A valid configuration gives back its values; a broken one names the key and its line."""
    from secmon.errors import ConfigError

    result = check_config_text(case.text, path)
    if case.broken_key is None:
        _require(not isinstance(result, ConfigError), f"refused: {result}")
        for dotted, value in case.expected.items():
            found: Any = result
            for part in dotted.split("."):
                found = found[part] if isinstance(found, dict) else getattr(found, part)
            _require(found == value, f"{dotted}: expected {value!r}, got {found!r}")
    else:
        _require(isinstance(result, ConfigError), f"{case.broken_key} broken, yet accepted")
        where = f"{path}:{case.broken_line}: {case.broken_key}: "
        _require(where in str(result), f"{where!r} not in {str(result)!r}")


# -- EVTX files --------------------------------------------------------------------------------


def check_evtx(path: Path, records_before: int) -> tuple[list[Any], list[Any]]:
    """A damaged file yields records and failure reports naming it; fewer records always come with a report."""
    from secmon.collect.sources.evtx import read_evtx
    from secmon.collect.transforms.normalize_winlog import normalize_evtx
    from secmon.errors import IngestError

    failures: list[Any] = []
    records = []
    try:
        for record in read_evtx(path, on_failure=failures.append):
            records.append(record)
            check_stored([normalize_evtx(record.event, path=str(path), created="2024-01-01T00:00:00Z")], "evtx")
    except IngestError as error:
        _require(str(path) in str(error), f"an IngestError that does not name the file: {error}")
        return records, [error]
    for failure in failures:
        _require(failure.path == path and len(failure.reason) > 3, f"unclear failure {failure!r}")
    _require(
        len(records) >= records_before or bool(failures), f"{records_before - len(records)} records lost unreported"
    )
    return records, failures


# -- what secmon bench fuzz runs ---------------------------------------------------------------


class Target(ABC, Generic[Input]):
    """One parser: how ``secmon bench fuzz`` draws its inputs and checks what it makes of them.

    A quarter of the inputs are valid (fresh from a generator of :mod:`.cases`, checked for a
    round trip); the others are valid inputs damaged (:mod:`.damage`), checked for the invariants.
    Subclasses set ``name`` and ``description`` and implement :meth:`draw` and :meth:`check`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    valid_share: ClassVar[float] = 0.25
    pool_size: ClassVar[int] = 300

    def __init__(self, d: Draw) -> None:
        self.unavailable: str | None = None  # why this target cannot run here (no data files)

    @abstractmethod
    def draw(self, d: Draw) -> Input: ...

    @abstractmethod
    def check(self, item: Input) -> None: ...

    def show(self, item: Input) -> str:
        shown = repr(item)
        return shown if len(shown) <= 300 else shown[:300] + f"… ({len(shown):,} characters)"

    def close(self) -> None:
        """Remove what :meth:`__init__` made (temporary files)."""


@dataclass(frozen=True, slots=True)
class _Line:
    case: Case[str]
    fmt: str


class LineTarget(Target[_Line]):
    """Log lines through ``normalize``: generated lines, the specifications' examples, and damaged ones."""

    generators: ClassVar[tuple[Callable[[Draw], Case[str]], ...]]
    fmt: ClassVar[str]
    damaged_formats: ClassVar[tuple[str, ...]] = ()  # default: fmt
    examples: ClassVar[tuple[Case[str], ...]] = ()

    def __init__(self, d: Draw) -> None:
        super().__init__(d)
        pool = [d.choice(self.generators)(d) for _ in range(self.pool_size)]
        self.seeds = [case.data for case in (*self.examples, *pool)]

    def draw(self, d: Draw) -> _Line:
        if d.chance(self.valid_share):
            return self.valid(d)
        line = damage_text(d, d.choice(self.seeds), self.seeds)
        return _Line(Case(line), d.choice(self.damaged_formats or (self.fmt,)))

    def valid(self, d: Draw) -> _Line:
        return _Line(d.choice(self.generators)(d), self.fmt)

    def check(self, item: _Line) -> None:
        check_line(item.case, item.fmt)

    def show(self, item: _Line) -> str:
        return f"[{item.fmt}] {super().show(item.case.data)}"  # type: ignore[arg-type]


class SyslogTarget(LineTarget):
    name = "syslog"
    description = "RFC 5424 and RFC 3164 lines (normalize, format syslog)"
    generators = (rfc5424_case, rfc3164_case)
    fmt = "syslog"
    examples = (*RFC5424_EXAMPLES, *RFC3164_EXAMPLES)


class ProgramsTarget(LineTarget):
    name = "programs"
    description = "sshd, sudo, cron and firewall messages in syslog lines (enrich_programs)"
    generators = (sshd_case, sudo_case, cron_case, iptables_case)
    fmt = "syslog"


class AuditdTarget(LineTarget):
    name = "auditd"
    description = "audit.log records (format auditd)"
    generators = (auditd_case,)
    fmt = "auditd"


class WebTarget(LineTarget):
    name = "web"
    description = "access and error logs of Apache and nginx (format auto, which tells them apart)"
    generators = (apache_access_case,)
    fmt = "auto"
    examples = (
        Case("[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] Directory index forbidden"),
        Case("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328] [client 1.2.3.4:5] AH00037: x"),
        Case(
            '2024/01/02 03:04:05 [error] 123#0: *4 open() failed, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1"'
        ),
    )


class JsonTarget(LineTarget):
    name = "json"
    description = "JSON lines, Beats documents and EVTX records as JSON (formats json, beats, evtx)"
    generators = (json_line_case, beats_case)
    fmt = "json"
    damaged_formats = ("json", "beats", "evtx")
    examples = (
        Case(
            '{"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}, "EventID": 4624,'
            ' "Channel": "Security", "Computer": "dc1", "TimeCreated": {"#attributes": {"SystemTime":'
            ' "2024-01-02T03:04:05.123456Z"}}, "EventRecordID": 7, "Keywords": "0x8020000000000000"},'
            ' "EventData": {"TargetUserName": "alice", "IpAddress": "10.0.0.1", "LogonType": 3}}'
        ),
        Case(
            '{"@timestamp": "2024-01-02T03:04:05Z", "winlog": {"channel": "Security", "event_id": 4625,'
            ' "provider_name": "Microsoft-Windows-Security-Auditing", "event_data": {"TargetUserName": "bob"}},'
            ' "host": {"name": "dc1"}, "event": {"code": "4625"}}'
        ),
    )

    def valid(self, d: Draw) -> _Line:
        generator = d.choice(self.generators)
        return _Line(generator(d), "beats" if generator is beats_case else "json")


class BulkTarget(Target[BulkCase | str]):
    name = "bulk"
    description = "Elasticsearch _bulk bodies, split into actions and documents (the _bulk endpoint's parser)"

    def __init__(self, d: Draw) -> None:
        super().__init__(d)
        self.seeds = [bulk_case(d).body for _ in range(self.pool_size)]

    def draw(self, d: Draw) -> BulkCase | str:
        if d.chance(self.valid_share):
            return bulk_case(d)
        return damage_text(d, d.choice(self.seeds), self.seeds)

    def check(self, item: BulkCase | str) -> None:
        if isinstance(item, BulkCase):
            check_bulk_case(item)
        else:
            check_bulk(item)


class PacketsTarget(Target[FrameCase | tuple[bytes, int]]):
    name = "packets"
    description = "captured frames: decode_frame, then the flow, DNS, TLS, QUIC and HTTP parsers"

    def __init__(self, d: Draw) -> None:
        from secmon.collect.transforms.packets import PacketProcessor

        super().__init__(d)
        generated = [frame_case(d) for _ in range(self.pool_size)]
        self.seeds = [(case.data, case.linktype) for case in generated] + _real_frames(per_capture=40)
        self.processor = PacketProcessor(max_flows=10_000)
        self.clock = itertools.count(1_700_000_000)

    def draw(self, d: Draw) -> FrameCase | tuple[bytes, int]:
        if d.chance(self.valid_share):
            return frame_case(d)
        data, linktype = d.choice(self.seeds)
        return damage_bytes(d, data, [frame for frame, _ in self.seeds], keep=14), linktype

    def check(self, item: FrameCase | tuple[bytes, int]) -> None:
        if isinstance(item, FrameCase):
            check_frame_case(item)
            data, linktype = item.data, item.linktype
        else:
            data, linktype = item
            check_frame(data, linktype)
        # The whole path after decoding: reassembly, flows, streams and the application parsers.
        check_stored(self.processor.process(next(self.clock) / 100, data, linktype))


def _real_frames(per_capture: int) -> list[tuple[bytes, int]]:
    """The first frames of each capture of the datasets, when they are there."""
    from secmon.collect.transforms.packets import CaptureError, read_capture

    frames: list[tuple[bytes, int]] = []
    for capture in sorted((DATASETS / "pcap").rglob("*.pcap*")):
        try:
            for _, data, linktype in itertools.islice(read_capture(capture), per_capture):
                frames.append((data, linktype))
        except CaptureError:
            pass  # the damaged captures among them: their first frames are in
    return frames


class SigmaTarget(Target[SigmaCase | BrokenRule | str]):
    name = "sigma"
    description = "Sigma rule YAML (load_text, then matching for the generated rules)"
    valid_share = 0.5

    def __init__(self, d: Draw) -> None:
        super().__init__(d)
        sigma_pipeline()
        self.seeds = [sigma_case(d).text for _ in range(self.pool_size)] + _shipped_rules()

    def draw(self, d: Draw) -> SigmaCase | BrokenRule | str:
        if d.chance(self.valid_share):
            return sigma_case(d) if d.chance(0.7) else broken_sigma_case(d)
        return damage_text(d, d.choice(self.seeds), self.seeds)

    def check(self, item: SigmaCase | BrokenRule | str) -> None:
        if isinstance(item, SigmaCase):
            check_sigma_case(item)
        elif isinstance(item, BrokenRule):
            check_broken_rule(item)
        else:
            check_rule_text(item)


def _shipped_rules() -> list[str]:
    from secmon.detection.pipelines import RULES_DIR

    rules = (path for path in sorted(RULES_DIR.rglob("*.yml")) if not {"pipelines", "correlations"} & set(path.parts))
    return [path.read_text() for path in rules if path.name != "logsources.yml"]


def _memory_folder() -> str | None:
    """Where to write the files each input is: in memory when there is such a place, as the disk is not measured."""
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


class ConfigTarget(Target[ConfigCase | str]):
    name = "config"
    description = "the configuration file (load_settings)"
    valid_share = 0.5

    def __init__(self, d: Draw) -> None:
        super().__init__(d)
        self.folder = tempfile.TemporaryDirectory(prefix="secmon-fuzz-config-", dir=_memory_folder())
        self.path = Path(self.folder.name) / "secmon.yml"
        self.seeds = [config_case(d).text for _ in range(self.pool_size)]

    def draw(self, d: Draw) -> ConfigCase | str:
        if d.chance(self.valid_share):
            return config_case(d) if d.chance(0.5) else broken_config_case(d)
        return damage_text(d, d.choice(self.seeds), self.seeds)

    def check(self, item: ConfigCase | str) -> None:
        if isinstance(item, ConfigCase):
            check_config_case(item, self.path)
        else:
            check_config_text(item, self.path)

    def close(self) -> None:
        self.folder.cleanup()


class EvtxTarget(Target[tuple[bytes, int]]):
    name = "evtx"
    description = "damaged EVTX files (read_evtx, then normalize_evtx)"
    valid_share = 0.0

    def __init__(self, d: Draw) -> None:
        from secmon.collect.sources.evtx import read_evtx

        super().__init__(d)
        self.folder = tempfile.TemporaryDirectory(prefix="secmon-fuzz-evtx-", dir=_memory_folder())
        self.path = Path(self.folder.name) / "damaged.evtx"
        # One-chunk files (each input is a whole file to write and read), with their record counts.
        self.seeds: list[tuple[bytes, int]] = []
        for source in sorted((DATASETS / "evtx").rglob("*.evtx")):
            if source.stat().st_size <= 69632:
                self.seeds.append((source.read_bytes(), sum(1 for _ in read_evtx(source))))
        if not self.seeds:
            self.unavailable = f"no EVTX files under {DATASETS / 'evtx'}"

    def draw(self, d: Draw) -> tuple[bytes, int]:
        data, records = d.choice(self.seeds)
        return damage_bytes(d, data, [seed for seed, _ in self.seeds], keep=4096 + 512), records

    def check(self, item: tuple[bytes, int]) -> None:
        self.path.write_bytes(item[0])
        check_evtx(self.path, item[1])

    def show(self, item: tuple[bytes, int]) -> str:
        return f"a damaged {len(item[0]):,}-byte EVTX file"

    def close(self) -> None:
        self.folder.cleanup()


TARGETS: Mapping[str, type[Target[Any]]] = {
    target.name: target
    for target in (
        SyslogTarget,
        ProgramsTarget,
        AuditdTarget,
        WebTarget,
        JsonTarget,
        BulkTarget,
        EvtxTarget,
        PacketsTarget,
        SigmaTarget,
        ConfigTarget,
    )
}
