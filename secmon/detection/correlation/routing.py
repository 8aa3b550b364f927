"""Routing correlation work across the workers of the scale-out mode.

A correlation counts the events of one group (``source.ip=10.0.0.5``) in one window, so every
event of a group must be counted by one worker. The detect worker that matched an event's base
rules therefore does not count it: it hands a small :class:`RoutedHit` to the bus, keyed so that
every event of the group lands on the same partition, and the worker owning that partition counts
it (``CorrelationEngine.observe_refs``).

Correlations that reference each other (``ssh_brute_force_then_login`` over ``ssh_brute_force_attempts``)
form one **family**: the inner one's hits feed the outer one inside the engine, so a family is
counted in one place. The key is the family and the values of the group-by fields every member
shares (``source.ip``), read through each member's field mapping of the base rule. A family
whose members share no group-by field, or read a shared one from different fields for one rule,
is keyed by the family alone: counted by one worker, which is correct, just not spread.

A hit carries the event's id, index and time, and only the fields the family reads of it
(group-by and measured fields, the agency), so the bus does not carry whole events twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from secmon.detection.fields import EventView
from secmon.detection.rules import CorrelationRule, Rule

_ALWAYS_CARRIED = ("organization.id", "organization.name")  # what a correlation alert copies of its event


@dataclass(frozen=True, slots=True)
class Family:
    """Correlations counted together: one is reachable from another through their references."""

    id: str  # the smallest member id: stable across reloads with the same members
    members: frozenset[str]
    # Per base rule the family counts: the event fields its routing key is read from (None: the
    # family alone is the key), and every field the family reads of its events.
    route_fields: Mapping[str, tuple[str, ...] | None]
    carried_fields: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RoutedHit:
    """An event's match of base rules that one family counts, as it travels on the bus."""

    family: str
    refs: tuple[str, ...]  # the base rules it matched that the family counts
    event_id: str
    index: str
    timestamp: float  # event time, epoch seconds
    event: dict[str, Any]  # the fields the family reads, by their dotted names

    def encode(self) -> bytes:
        fields = {"family": self.family, "refs": self.refs, "id": self.event_id, "index": self.index}
        return orjson.dumps({**fields, "time": self.timestamp, "event": self.event})

    @staticmethod
    def decode(value: bytes) -> RoutedHit:
        data = orjson.loads(value)
        return RoutedHit(data["family"], tuple(data["refs"]), data["id"], data["index"], data["time"], data["event"])


class CorrelationRouter:
    """Which family counts an event's matches, and under which key; one per loaded rule set."""

    def __init__(self, correlations: Sequence[CorrelationRule]) -> None:
        self.families = _families(correlations)
        self._by_ref: dict[str, list[Family]] = {}
        for family in self.families.values():
            for ref in family.carried_fields:
                self._by_ref.setdefault(ref, []).append(family)

    def route(
        self, matched: Sequence[Rule], event: Mapping[str, Any], event_id: str, index: str, timestamp: float
    ) -> list[tuple[bytes, RoutedHit]]:
        """The hits ``event`` sends to the bus, with their keys; none when no correlation counts its rules."""
        by_family: dict[str, list[str]] = {}
        for rule in matched:
            for family in self._by_ref.get(rule.id, ()):
                by_family.setdefault(family.id, []).append(rule.id)
        if not by_family:
            return []
        view = EventView(event)
        routed: list[tuple[bytes, RoutedHit]] = []
        for family_id, refs in by_family.items():
            family = self.families[family_id]
            by_key: dict[bytes, list[str]] = {}
            for ref in refs:
                key = _key(family, ref, view)
                if key is not None:
                    by_key.setdefault(key, []).append(ref)
            for key, key_refs in by_key.items():
                fields = {name for ref in key_refs for name in family.carried_fields[ref]}
                carried = {name: _carried(view, name) for name in sorted(fields) if view.raw(name)}
                routed.append((key, RoutedHit(family_id, tuple(key_refs), event_id, index, timestamp, carried)))
        return routed

    def carried(self, matched: Sequence[Rule], event: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The matched rules some correlation counts, and every field those correlations read of ``event``.

        What counting the event in another process needs, in one piece (an offline hunt's
        workers hand it to the process that counts every family); ``((), {})`` when none counts it.
        """
        by_ref = self._by_ref
        refs = tuple(rule.id for rule in matched if rule.id in by_ref)
        if not refs:
            return (), {}
        view = EventView(event)
        names = {name for ref in refs for family in by_ref[ref] for name in family.carried_fields[ref]}
        return refs, {name: _carried(view, name) for name in sorted(names) if view.raw(name)}


def _key(family: Family, ref: str, view: EventView) -> bytes | None:
    """The routing key of a match of ``ref``; None when the event lacks a group-by value (nothing to count)."""
    fields = family.route_fields[ref]
    if fields is None:
        return orjson.dumps([family.id])
    values: list[str] = [family.id]
    for name in fields:
        texts = view.texts(name)
        if not texts:
            return None
        values.append(texts[0])
    return orjson.dumps(values)


def _carried(view: EventView, name: str) -> Any:
    values = view.raw(name)
    return values[0] if len(values) == 1 else list(values)


def _families(correlations: Sequence[CorrelationRule]) -> dict[str, Family]:
    by_id = {rule.id: rule for rule in correlations}
    parent = {rule.id: rule.id for rule in correlations}

    def root(rule_id: str) -> str:
        while parent[rule_id] != rule_id:
            parent[rule_id] = parent[parent[rule_id]]
            rule_id = parent[rule_id]
        return rule_id

    for rule in correlations:
        for ref in rule.rule_refs:
            if ref in by_id:
                parent[root(ref)] = root(rule.id)
    members: dict[str, list[CorrelationRule]] = {}
    for rule in correlations:
        members.setdefault(root(rule.id), []).append(rule)
    families: dict[str, Family] = {}
    for rules in members.values():
        family = _family(rules, by_id)
        families[family.id] = family
    return families


def _family(rules: list[CorrelationRule], by_id: Mapping[str, CorrelationRule]) -> Family:
    shared = [name for name in rules[0].group_by if all(name in rule.group_by for rule in rules)]
    route: dict[str, tuple[str, ...] | None] = {}
    carried: dict[str, set[str]] = {}
    for rule in rules:
        for position, ref in enumerate(rule.rule_refs):
            if ref in by_id:
                continue  # a member's hits: counted inside the family
            group_fields = rule.group_fields[position]
            fields = tuple(group_fields[rule.group_by.index(name)] for name in shared) if shared else None
            # Two members reading the key from different fields of one rule: key by the family alone.
            route[ref] = fields if route.get(ref, fields) == fields else None
            wanted = carried.setdefault(ref, set(_ALWAYS_CARRIED))
            wanted.update(group_fields)
            if rule.value_fields:
                wanted.update(rule.value_fields[position])
    return Family(
        id=min(rule.id for rule in rules),
        members=frozenset(rule.id for rule in rules),
        route_fields=route,
        carried_fields={ref: tuple(sorted(fields)) for ref, fields in carried.items()},
    )
