""":mod:`.ir` nodes → plain Python callables ``(EventView) -> bool``, built once per rule load.

Every regular expression (a rule's ``re`` and its translated wildcards) runs on RE2, whose time
is linear in the input: no rule can stall the engine on a crafted event.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import ahocorasick
import re2

from secmon.detection.fields import KEYWORD_FIELDS, EventView
from secmon.detection.ir import AllOf, AnyOf, Leaf, Node, Not, Op

Predicate = Callable[[EventView], bool]
Values = Callable[[EventView], Sequence[str]]

# Above this many substrings, one automaton pass beats a Python loop of ``in`` tests.
_AUTOMATON_AT = 6


def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (raises ``re2.error``), without RE2 logging its errors to stderr."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def compile_node(node: Node) -> Predicate:
    """A callable that says whether an event matches ``node``."""
    if isinstance(node, Leaf):
        return _leaf(node)
    if isinstance(node, Not):
        inner = compile_node(node.item)
        return lambda view: not inner(view)
    parts = [compile_node(item) for item in _cheap_first(node.items)]
    if isinstance(node, AllOf):
        if len(parts) == 2:
            first, second = parts
            return lambda view: first(view) and second(view)

        def all_of(view: EventView) -> bool:
            for part in parts:  # noqa: SIM110 - a generator costs twice as much per event
                if not part(view):
                    return False
            return True

        return all_of
    assert isinstance(node, AnyOf)

    def any_of(view: EventView) -> bool:
        for part in parts:  # noqa: SIM110 - a generator costs twice as much per event
            if part(view):
                return True
        return False

    return any_of


def _cheap_first(items: Sequence[Node]) -> list[Node]:
    """Leaves before subtrees, negations last: most events fail on a plain comparison."""
    return sorted(items, key=lambda n: 0 if isinstance(n, Leaf) else 2 if isinstance(n, Not) else 1)


def _values_reader(leaf: Leaf) -> Values:
    """How the leaf reads the event: its field's (lowercased unless cased) text, or the keyword fields."""
    if leaf.field is None:
        if leaf.cased or leaf.op is Op.RE:
            return lambda view: [t for f in KEYWORD_FIELDS for t in view.texts(f)]
        return lambda view: [t for f in KEYWORD_FIELDS for t in view.lowered(f)]
    field = leaf.field
    if leaf.cased or leaf.op is Op.RE:
        return lambda view: view.texts(field)
    return lambda view: view.lowered(field)


def _leaf(leaf: Leaf) -> Predicate:
    read = _values_reader(leaf)
    builder = _BUILDERS.get(leaf.op)
    if builder is not None:
        test = builder(leaf)

        def match_any(view: EventView) -> bool:
            for text in read(view):  # noqa: SIM110 - a generator costs twice as much per event
                if test(text):
                    return True
            return False

        return match_any
    field = leaf.field or ""
    op = leaf.op
    if op is Op.NULL:
        return lambda view: not view.raw(field)
    if op is Op.EXISTS:
        wanted = bool(leaf.values[0])
        return lambda view: view.present(field) is wanted
    if op in _NUMERIC:
        return _numeric(field, op, leaf.values[0])
    if op in (Op.FIELDREF, Op.FIELDREF_STARTSWITH, Op.FIELDREF_ENDSWITH):
        return _fieldref(leaf, read)
    if op is Op.TIMEPART:
        part, number = cast(tuple[str, int], leaf.values[0])
        return _timepart(field, part, number)
    raise ValueError(f"no comparison for {op}")


def _eq(leaf: Leaf) -> Callable[[str], bool]:
    wanted = frozenset(str(v) for v in leaf.values)
    return wanted.__contains__


def _contains(leaf: Leaf) -> Callable[[str], bool]:
    needles = tuple(str(v) for v in leaf.values)
    if len(needles) == 1:
        needle = needles[0]
        return lambda text: needle in text
    if len(needles) < _AUTOMATON_AT:
        return lambda text: any(n in text for n in needles)
    automaton = ahocorasick.Automaton()
    for needle in needles:
        automaton.add_word(needle, needle)
    automaton.make_automaton()

    def found(text: str) -> bool:
        for _ in automaton.iter(text):
            return True
        return False

    return found


def _startswith(leaf: Leaf) -> Callable[[str], bool]:
    prefixes = tuple(str(v) for v in leaf.values)
    return lambda text: text.startswith(prefixes)


def _endswith(leaf: Leaf) -> Callable[[str], bool]:
    suffixes = tuple(str(v) for v in leaf.values)
    return lambda text: text.endswith(suffixes)


def _glob(leaf: Leaf) -> Callable[[str], bool]:
    pattern = compile_regex("(?s)" + "|".join(f"(?:{v})" for v in leaf.values))
    return lambda text: pattern.fullmatch(text) is not None


def _regex(leaf: Leaf) -> Callable[[str], bool]:
    prefix = f"(?{leaf.flags})" if leaf.flags else ""
    pattern = compile_regex(prefix + "|".join(f"(?:{v})" for v in leaf.values))
    return lambda text: pattern.search(text) is not None


def _cidr(leaf: Leaf) -> Callable[[str], bool]:
    networks = [ipaddress.ip_network(str(v), strict=False) for v in leaf.values]

    def inside(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return inside


_BUILDERS: dict[Op, Callable[[Leaf], Callable[[str], bool]]] = {
    Op.EQ: _eq,
    Op.CONTAINS: _contains,
    Op.STARTSWITH: _startswith,
    Op.ENDSWITH: _endswith,
    Op.GLOB: _glob,
    Op.RE: _regex,
    Op.CIDR: _cidr,
}
_NUMERIC: dict[Op, Callable[[float, float], bool]] = {
    Op.LT: lambda a, b: a < b,
    Op.LTE: lambda a, b: a <= b,
    Op.GT: lambda a, b: a > b,
    Op.GTE: lambda a, b: a >= b,
    Op.NEQ: lambda a, b: a != b,
}


def _numeric(field: str, op: Op, bound: Any) -> Predicate:
    compare = _NUMERIC[op]
    limit = float(bound)

    def test(view: EventView) -> bool:
        for value in view.raw(field):
            number = _number(value)
            if number is not None and compare(number, limit):
                return True
        return False

    return test


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fieldref(leaf: Leaf, read: Values) -> Predicate:
    other = str(leaf.values[0])
    cased = leaf.cased
    op = leaf.op

    def test(view: EventView) -> bool:
        references = view.texts(other) if cased else view.lowered(other)
        for text in read(view):
            for reference in references:
                if op is Op.FIELDREF and text == reference:
                    return True
                if op is Op.FIELDREF_STARTSWITH and text.startswith(reference):
                    return True
                if op is Op.FIELDREF_ENDSWITH and text.endswith(reference):
                    return True
        return False

    return test


def _timepart(field: str, part: str, number: int) -> Predicate:
    def test(view: EventView) -> bool:
        for text in view.texts(field):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                continue
            value = moment.isocalendar().week if part == "week" else getattr(moment, part)
            if value == number:
                return True
        return False

    return test
