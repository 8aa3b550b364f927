"""Which rules could match an event, found without evaluating them.

For each rule, :func:`anchor_of` finds a set of alternatives of which at least one must hold
for the rule to match: an exact value of a field, or a substring of a field. The AND of a
condition picks its most selective part, an OR unites its parts, a NOT gives nothing (so the
rule is always evaluated). :class:`RuleIndex` puts the exact values in hash maps and the
substrings in one Aho-Corasick automaton per field, so an event costs one lookup per indexed
field it has plus one automaton pass per indexed text field, whatever the number of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import ahocorasick

from secmon.detection.fields import KEYWORD_FIELDS, EventView, split_field
from secmon.detection.ir import AllOf, AnyOf, Leaf, Node, Not, Op

# Exact values that select a whole log (a channel, a dataset): the poorest anchors, used only
# when a rule has nothing else. Event ids select a kind of event: better, still common.
_LOG_FIELDS = frozenset({"winlog.channel", "event.dataset", "winlog.provider_name"})
_KIND_FIELDS = frozenset({"winlog.event_id", "event.code"})
# Fields with a few values that most events share (integrity level, signature status, logon
# type): an exact value there says little.
_COMMON_VALUE_FIELDS = frozenset(
    f"winlog.event_data.{name}" for name in ("IntegrityLevel", "Signed", "SignatureStatus", "LogonType")
)
_SUBSTRING_OPS = {Op.CONTAINS, Op.STARTSWITH, Op.ENDSWITH}


@dataclass(frozen=True, slots=True)
class Alternative:
    kind: Literal["eq", "sub"]
    field: str | None  # None: the keyword fields
    value: str  # lowercase

    @property
    def quality(self) -> int:
        """Roughly how rare a match is: longer literals are rarer; shared exact values are common."""
        if self.kind == "eq":
            if self.field in _LOG_FIELDS:
                return 0
            if self.field in _KIND_FIELDS or self.field in _COMMON_VALUE_FIELDS:
                return 2
            return 4 + min(len(self.value), 16)
        # UTF-8 length: a non-ASCII character (an emoji, a lookalike letter) is rare in logs.
        return min(len(self.value.encode("utf-8", "surrogatepass")), 16)


Anchor = frozenset[Alternative]


def anchor_of(node: Node) -> Anchor | None:
    """Alternatives of which one holds whenever ``node`` matches, or None when there are none."""
    if isinstance(node, Leaf):
        return _leaf_anchor(node)
    if isinstance(node, Not):
        return None
    if isinstance(node, AnyOf):
        union: set[Alternative] = set()
        for item in node.items:
            anchor = anchor_of(item)
            if anchor is None:
                return None
            union |= anchor
        return frozenset(union)
    assert isinstance(node, AllOf)
    candidates = [a for a in map(anchor_of, node.items) if a is not None]
    return max(candidates, key=_quality, default=None)


def _quality(anchor: Anchor) -> tuple[int, int]:
    return min(a.quality for a in anchor), -len(anchor)


def _leaf_anchor(leaf: Leaf) -> Anchor | None:
    if leaf.op is Op.EQ and leaf.field is not None:
        return frozenset(Alternative("eq", leaf.field, str(v).lower()) for v in leaf.values)
    if leaf.op in _SUBSTRING_OPS:
        literals: Iterable[str | None] = (str(v).lower() for v in leaf.values)
    elif leaf.op in (Op.GLOB, Op.RE) and leaf.literals:
        literals = leaf.literals
    else:
        return None
    alternatives = set()
    for literal in literals:
        if not literal:
            return None  # a value that needs no particular substring: no anchor
        alternatives.add(Alternative("sub", leaf.field, literal))
    return frozenset(alternatives)


# A field's full name, its exact-value table and its substring automaton (with each literal's rules).
_FieldLookups = tuple[str, dict[str, list[int]] | None, tuple[ahocorasick.Automaton, list[list[int]]] | None]


class RuleIndex:
    """Candidate rules (by position) for an event, from the rules' anchors."""

    def __init__(self, anchors: Sequence[Anchor | None]) -> None:
        self.always: list[int] = [i for i, a in enumerate(anchors) if a is None]
        self._exact: dict[str, dict[str, list[int]]] = {}
        substrings: dict[str, dict[str, list[int]]] = {}
        for position, anchor in enumerate(anchors):
            for alt in anchor or ():
                if alt.kind == "eq":
                    assert alt.field is not None
                    self._exact.setdefault(alt.field, {}).setdefault(alt.value, []).append(position)
                else:  # a keyword (no field) is looked for in each keyword field
                    for target in KEYWORD_FIELDS if alt.field is None else (alt.field,):
                        substrings.setdefault(target, {}).setdefault(alt.value, []).append(position)
        # Per field: its exact-value table and its substring automaton (with the rules of each literal).
        self._automata: dict[str, tuple[ahocorasick.Automaton, list[list[int]]]] = {}
        for field, literals in substrings.items():
            automaton = ahocorasick.Automaton()
            owners: list[list[int]] = []
            for literal_id, (literal, positions) in enumerate(literals.items()):
                automaton.add_word(literal, literal_id)
                owners.append(positions)
            automaton.make_automaton()
            self._automata[field] = (automaton, owners)
        # Indexed fields grouped by parent object, so an event is asked once per object which it
        # has; each with its full name and its lookups, found here once rather than per event.
        groups: dict[str, set[str]] = {}
        for field in {*self._exact, *self._automata}:
            parent, name = split_field(field)
            groups.setdefault(parent, set()).add(name)
        self._groups: list[tuple[str, frozenset[str], dict[str, _FieldLookups]]] = []
        for parent, names in groups.items():
            lookups = {}
            for name in names:
                field = f"{parent}.{name}" if parent else name
                lookups[name] = (field, self._exact.get(field), self._automata.get(field))
            self._groups.append((parent, frozenset(names), lookups))

    def candidates(self, view: EventView) -> set[int]:
        """Positions of the rules that may match ``view`` (a superset of those that do)."""
        found: set[int] = set(self.always)
        for parent, names, lookups in self._groups:
            for name in view.present_among(parent, names):
                field, table, indexed = lookups[name]
                values = view.lowered(field)
                if table is not None:
                    for value in values:
                        positions = table.get(value)
                        if positions:
                            found.update(positions)
                if indexed is not None:
                    automaton, owners = indexed
                    for text in values:
                        for literal_id in {literal_id for _, literal_id in automaton.iter(text)}:
                            found.update(owners[literal_id])
        return found
