"""A rule's condition as secmon matches it: a small tree of plain, picklable nodes.

pySigma parses a rule and applies the processing pipelines; :mod:`.translate` turns its condition
tree into these nodes once, and the result is what the rule cache stores. :mod:`.compile` turns
nodes into Python callables and :mod:`.prefilter` reads them to index the rule. Strings that
match case-insensitively are already lowercased here, so nothing on the per-event path does it
for the rule's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Op(StrEnum):
    """How a leaf compares a field's values with its own."""

    EQ = "eq"  # equals one of the values
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    GLOB = "glob"  # values are anchored regular expressions translated from Sigma wildcards
    RE = "re"  # values are regular expressions, searched (unanchored)
    CIDR = "cidr"  # values are networks, "10.0.0.0/8"
    NULL = "null"  # the field is absent or null
    EXISTS = "exists"  # the field is present (values: (True,) or (False,))
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    NEQ = "neq"  # numeric inequality (Sigma's compare form)
    FIELDREF = "fieldref"  # equals the value of another field (values: field names)
    FIELDREF_STARTSWITH = "fieldref_startswith"
    FIELDREF_ENDSWITH = "fieldref_endswith"
    TIMEPART = "timepart"  # values: ("hour", 3): a part of the field's timestamp equals a number


@dataclass(frozen=True, slots=True)
class Leaf:
    """``field`` compared with ``values`` by ``op``; any value matching is a match (OR).

    ``field`` is None for Sigma keywords, searched in the event's text fields. ``cased`` keeps
    case (the ``cased`` modifier); otherwise string values are lowercase. ``flags`` are a regular
    expression's (``i``, ``m``, ``s``). ``literals`` are substrings, one per value, that a value
    must contain to match (used for globs and regular expressions, whose values cannot say it).
    """

    field: str | None
    op: Op
    values: tuple[str | int | float | bool | tuple[str, int], ...]
    cased: bool = False
    flags: str = ""
    literals: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Leaf | AllOf | AnyOf | Not
