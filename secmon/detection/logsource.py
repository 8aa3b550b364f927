"""Sigma logsources (product / category / service) → the secmon events each one selects.

The table comes from pySigma's Windows tables (service → channel, Sysmon category → event
ids) and from ``rules/logsources.yml`` for everything else. The matcher uses it twice: a rule
is indexed under its logsource, and an event is matched only against the logsources it belongs
to. The conversion to Elasticsearch queries (``secmon rules convert``) adds the same selection
to the query, so both see the same events.

A rule takes the selection of the one entry for exactly its logsource. pySigma's own
``LogsourceCondition`` treats a field an entry leaves out as "any", so a product-less entry
(``category: network_connection``, the packet decoder's flows) would also hold for every
``product: windows, category: network_connection`` rule and AND the flows' selection onto
Sysmon's: a selection no event can meet. :class:`ExactLogsourceCondition` holds for one
logsource only.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma.correlations import SigmaCorrelationRule
from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.processing.conditions import RuleProcessingCondition
from sigma.rule import SigmaRule

from secmon.detection.fields import EventView
from secmon.errors import RuleError
from secmon.yaml_loader import SafeLoader, yaml_problem

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

LogsourceKey = tuple[str | None, str | None, str | None]  # product, category, service


@dataclass(frozen=True, slots=True)
class Selection:
    """Events whose every field in ``fields`` holds one of its values."""

    fields: tuple[tuple[str, frozenset[str]], ...]

    def covers(self, view: EventView) -> bool:
        for field, values in self.fields:  # noqa: SIM110 - per event; a generator costs twice as much
            if values.isdisjoint(view.texts(field)):
                return False
        return True

    def as_conditions(self) -> dict[str, list[str]]:
        """The selection as pySigma ``AddConditionTransformation`` conditions (OR within a field)."""
        return {field: sorted(values) for field, values in self.fields}


@functools.cache
def _root(field: str) -> str:
    return field.partition(".")[0]


def key_of(product: str | None, category: str | None, service: str | None) -> LogsourceKey:
    return (product or None, category or None, service or None)


@dataclass
class ExactLogsourceCondition(RuleProcessingCondition):
    """A pySigma rule condition that holds for rules of exactly this logsource (an unset field must be unset)."""

    product: str | None = None
    category: str | None = None
    service: str | None = None

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        if not isinstance(rule, SigmaRule):  # correlations map fields per referenced rule (correlation.py)
            return False
        own = rule.logsource
        return key_of(own.product, own.category, own.service) == (self.product, self.category, self.service)


class _Step:
    """Where an event's value of a field leads: logsources it completes, and fields still to look at."""

    __slots__ = ("keys", "then")

    def __init__(self) -> None:
        self.keys: list[LogsourceKey] = []
        self.then: dict[str, tuple[str, dict[str, _Step]]] = {}  # field -> (its root, value -> step)


class LogsourceMap:
    """Every logsource secmon has events for, and which of them an event belongs to."""

    def __init__(self, selections: Mapping[LogsourceKey, Selection]) -> None:
        self.selections = dict(selections)
        # Events are routed down a tree of field values (a channel, then an event id; a dataset,
        # then a program), so an event reads each field once and only where a value led it.
        self._start: dict[str, tuple[str, dict[str, _Step]]] = {}
        # An event's logsources (so its rules) come in one order: by the fields their selection
        # reads (in order of first use), then as listed.
        uses = {key: tuple(field for field, _ in selection.fields) for key, selection in self.selections.items()}
        first_use = {fields: order for order, fields in enumerate(dict.fromkeys(uses.values()))}
        self._rank = {key: rank for rank, key in enumerate(sorted(uses, key=lambda key: first_use[uses[key]]))}
        for key, selection in self.selections.items():
            for values in itertools.product(*(sorted(v) for _, v in selection.fields)):
                fields, step = self._start, None
                for (field, _), value in zip(selection.fields, values, strict=True):
                    by_value = fields.setdefault(field, (_root(field), {}))[1]
                    step = by_value.setdefault(value, _Step())
                    fields = step.then
                assert step is not None  # a selection has at least one field
                step.keys.append(key)

    def keys_of(self, view: EventView) -> list[LogsourceKey]:
        """The logsources ``view`` belongs to, each once."""
        keys: list[LogsourceKey] = []
        _walk(view, self._start, keys)
        if len(keys) > 1:
            keys = sorted(set(keys), key=self._rank.__getitem__)
        return keys

    @classmethod
    def load(cls, path: Path) -> LogsourceMap:
        """The Windows tables plus the entries of a ``logsources.yml`` file (which take precedence)."""
        selections = dict(_windows_selections())
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"cannot read the logsource table: {exc}", path=str(path)) from exc
        try:  # the loader rule authors' YAML goes through: a value YAML cannot build is not a crash
            entries = yaml.load(text, Loader=SafeLoader) or []
        except yaml.YAMLError as exc:
            problem = yaml_problem(exc, text)
            reason = f"cannot read the logsource table: {problem.reason}"
            raise RuleError(reason, path=str(path), line=problem.line) from exc
        if not isinstance(entries, list):
            raise RuleError("the logsource table must be a list of entries", path=str(path))
        for number, entry in enumerate(entries, 1):
            key, selection = _entry(entry, f"{path} (entry {number})")
            selections[key] = selection
        return cls(selections)


def _walk(view: EventView, fields: dict[str, tuple[str, dict[str, _Step]]], keys: list[LogsourceKey]) -> None:
    event = view.event
    for field, (root, by_value) in fields.items():
        # Most events lack most fields' first object (a syslog line has no winlog): one dict
        # lookup rules them out. A flat key with dots in it ("winlog.channel") is looked for too.
        if root not in event and field not in event:
            continue
        for value in view.texts(field):
            step = by_value.get(value)
            if step is not None:
                keys.extend(step.keys)
                if step.then:
                    _walk(view, step.then, keys)


def _windows_selections() -> dict[LogsourceKey, Selection]:
    selections: dict[LogsourceKey, Selection] = {}
    for service, channels in windows_logsource_mapping.items():
        selections[("windows", None, service)] = _selection({"winlog.channel": channels})
    for category, event_ids in sysmon_generic_logsource_eventid_mapping.items():
        selections[("windows", category, None)] = _selection(
            {"winlog.channel": SYSMON_CHANNEL, "winlog.event_id": event_ids}
        )
    return selections


def _entry(entry: Any, where: str) -> tuple[LogsourceKey, Selection]:
    if not isinstance(entry, dict) or not isinstance(entry.get("logsource"), dict) or not entry.get("events"):
        raise RuleError("each entry needs a 'logsource' mapping and non-empty 'events'", path=where)
    logsource, events = entry["logsource"], entry["events"]
    unknown = set(logsource) - {"product", "category", "service"}
    if unknown:
        raise RuleError(f"unknown logsource keys {sorted(unknown)}", path=where)
    if not isinstance(events, dict):
        raise RuleError("'events' must map field names to values", path=where)
    key = key_of(logsource.get("product"), logsource.get("category"), logsource.get("service"))
    return key, _selection(events)


def _selection(fields: Mapping[str, Any]) -> Selection:
    def values(raw: Any) -> frozenset[str]:
        items: Sequence[Any] = raw if isinstance(raw, list | tuple) else [raw]
        return frozenset(str(v) for v in items)

    return Selection(tuple((field, values(raw)) for field, raw in fields.items()))
