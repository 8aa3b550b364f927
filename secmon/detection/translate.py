"""pySigma's parsed condition (after the processing pipelines) → secmon's :mod:`.ir` nodes.

pySigma has already applied every modifier: ``contains`` is a string with wildcards around it,
``windash`` and ``base64offset`` are expansions, ``neq`` is a NOT, ``all`` an AND. What is left
here is to say, per value, which comparison it needs, and to reject what cannot be matched on a
single event (backend query expressions, placeholders without configured values, regular
expressions RE2 cannot run).
"""

from __future__ import annotations

import re._parser as sre_parse  # the stdlib's own regex parser, to find a pattern's literal runs
from typing import Any

import re2
from sigma import conditions as sc
from sigma import types as st

from secmon.detection.compile import compile_regex
from secmon.detection.ir import AllOf, AnyOf, Leaf, Node, Not, Op


class UnsupportedCondition(Exception):
    """A rule's condition uses something the streaming matcher cannot evaluate; the message says what.

    ``token`` is text of the rule file the problem is about, for finding its line.
    """

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


_COMPARE_OPS = {
    st.CompareOperators.LT: Op.LT,
    st.CompareOperators.LTE: Op.LTE,
    st.CompareOperators.GT: Op.GT,
    st.CompareOperators.GTE: Op.GTE,
    st.CompareOperators.NEQ: Op.NEQ,
}
_RE_FLAGS = {
    st.SigmaRegularExpressionFlag.IGNORECASE: "i",
    st.SigmaRegularExpressionFlag.MULTILINE: "m",
    st.SigmaRegularExpressionFlag.DOTALL: "s",
}
# Leaves of one OR with the same field and comparison become one leaf with several values.
_MERGEABLE = {Op.EQ, Op.CONTAINS, Op.STARTSWITH, Op.ENDSWITH, Op.GLOB, Op.RE, Op.CIDR}


def translate(condition: Any) -> Node:
    """The :mod:`.ir` tree for a parsed pySigma condition (``SigmaCondition.parsed``)."""
    if isinstance(condition, sc.ConditionAND):
        return _flatten(AllOf, [translate(arg) for arg in condition.args])
    if isinstance(condition, sc.ConditionOR):
        return _merge_or([translate(arg) for arg in condition.args])
    if isinstance(condition, sc.ConditionNOT):
        return Not(translate(condition.args[0]))
    if isinstance(condition, sc.ConditionFieldEqualsValueExpression):
        return _value(condition.field, condition.value)
    if isinstance(condition, sc.ConditionValueExpression):
        return _value(None, condition.value)
    raise UnsupportedCondition(f"unexpected condition element {type(condition).__name__}")


def _value(field: str | None, value: Any) -> Node:  # noqa: PLR0911 - one return per Sigma type
    if isinstance(value, st.SigmaExpansion):
        return _merge_or([_value(field, item) for item in value.values])
    if isinstance(value, st.SigmaString):  # also SigmaCasedString
        return _string(field, value)
    if isinstance(value, st.SigmaBool):  # before SigmaNumber: neither subclasses the other, but be explicit
        return Leaf(field, Op.EQ, ("true" if value.boolean else "false",))
    if isinstance(value, st.SigmaTimestampPart):
        return Leaf(field, Op.TIMEPART, ((value.timestamp_part.name.lower(), int(value.number)),))
    if isinstance(value, st.SigmaNumber):
        return Leaf(field, Op.EQ, (str(value.number),))
    if isinstance(value, st.SigmaNull):
        return Leaf(field, Op.NULL, ())
    if isinstance(value, st.SigmaExists):
        return Leaf(field, Op.EXISTS, (bool(value.exists),))
    if isinstance(value, st.SigmaRegularExpression):
        return _regex(field, value)
    if isinstance(value, st.SigmaCIDRExpression):
        return Leaf(field, Op.CIDR, (str(value.network),))
    if isinstance(value, st.SigmaCompareExpression):
        return Leaf(field, _COMPARE_OPS[value.op], (value.number.number,))
    if isinstance(value, st.SigmaFieldReference):
        op = Op.FIELDREF_STARTSWITH if value.starts_with else Op.FIELDREF_ENDSWITH if value.ends_with else Op.FIELDREF
        return Leaf(field, op, (value.field,))
    if isinstance(value, st.SigmaQueryExpression):
        raise UnsupportedCondition(
            f"placeholder %{value.id}% has no configured values (detection.placeholders)", f"%{value.id}%"
        )
    raise UnsupportedCondition(f"value type {type(value).__name__} of field {field!r} is not supported")


def _string(field: str | None, value: st.SigmaString) -> Leaf:
    cased = isinstance(value, st.SigmaCasedString)
    parts: list[str | st.SpecialChars] = []
    for part in value.s:
        if isinstance(part, st.Placeholder):
            raise UnsupportedCondition(
                f"placeholder %{part.name}% has no configured values (detection.placeholders)", f"%{part.name}%"
            )
        parts.append(part if isinstance(part, st.SpecialChars) else (part if cased else part.lower()))
    if field is None:  # a keyword is searched anywhere in the text
        parts = _wrap_multi(parts)
    texts = [p for p in parts if isinstance(p, str)]
    specials = [i for i, p in enumerate(parts) if not isinstance(p, str)]
    multi = st.SpecialChars.WILDCARD_MULTI
    if not specials:
        return Leaf(field, Op.EQ, ("".join(texts),), cased)
    inner = parts[1:-1] if len(parts) >= 2 else []
    if len(parts) <= 3 and all(isinstance(p, str) for p in inner):
        starts, ends = parts[0] == multi, parts[-1] == multi
        if len(parts) == 3 and starts and ends:
            return Leaf(field, Op.CONTAINS, (str(parts[1]),), cased)
        if len(parts) == 2 and starts and isinstance(parts[1], str):
            return Leaf(field, Op.ENDSWITH, (parts[1],), cased)
        if len(parts) == 2 and ends and isinstance(parts[0], str):
            return Leaf(field, Op.STARTSWITH, (parts[0],), cased)
    pattern = "".join(re2.escape(p) if isinstance(p, str) else (".*" if p == multi else ".") for p in parts)
    longest = max(texts, key=len, default="")
    return Leaf(field, Op.GLOB, (pattern,), cased, literals=(longest.lower() or None,))


def _wrap_multi(parts: list[str | st.SpecialChars]) -> list[str | st.SpecialChars]:
    multi = st.SpecialChars.WILDCARD_MULTI
    if not parts or parts[0] != multi:
        parts = [multi, *parts]
    if parts[-1] != multi:
        parts = [*parts, multi]
    return parts


def _regex(field: str | None, value: st.SigmaRegularExpression) -> Leaf:
    pattern = value.regexp.to_plain() if isinstance(value.regexp, st.SigmaString) else str(value.regexp)
    flags = "".join(sorted(_RE_FLAGS[f] for f in value.flags))
    try:
        compile_regex(f"(?{flags}){pattern}" if flags else pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedCondition(
            f"regular expression {pattern!r} is not supported by RE2: {reason}", pattern
        ) from exc
    return Leaf(field, Op.RE, (pattern,), cased=True, flags=flags, literals=(required_literal(pattern),))


def required_literal(pattern: str) -> str | None:
    """The longest run of literal characters every match of ``pattern`` contains, lowercased, or None.

    Only runs in the top-level sequence count: anything inside a group, an alternation, a class or
    a repetition may be absent from a match. Used to index a regular expression by a substring.
    """
    try:
        items = list(sre_parse.parse(pattern))
    except Exception:
        return None
    best, run = "", []
    for op, arg in items:
        if op is sre_parse.LITERAL:
            run.append(chr(arg))
            continue
        if op is sre_parse.BRANCH:
            return None if len(items) == 1 else _longest(best, run)
        best, run = _longest(best, run), []
    best = _longest(best, run)
    return best.lower() or None


def _longest(best: str, run: list[str]) -> str:
    text = "".join(run)
    return text if len(text) > len(best) else best


def _flatten(kind: type[AllOf] | type[AnyOf], items: list[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def _merge_or(items: list[Node]) -> Node:
    """An OR, with same-field same-comparison leaves merged into one leaf of several values."""
    merged: dict[tuple[str | None, Op, bool, str], Leaf] = {}
    rest: list[Node] = []
    flat = _flatten(AnyOf, items)
    for item in flat.items if isinstance(flat, AnyOf) else (flat,):
        if isinstance(item, Leaf) and item.op in _MERGEABLE:
            key = (item.field, item.op, item.cased, item.flags)
            prior = merged.get(key)
            merged[key] = item if prior is None else _join(prior, item)
        else:
            rest.append(item)
    nodes: list[Node] = [*merged.values(), *rest]
    return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))


def _join(a: Leaf, b: Leaf) -> Leaf:
    literals = (a.literals or (None,) * len(a.values)) + (b.literals or (None,) * len(b.values))
    keep_literals = a.op in (Op.GLOB, Op.RE)
    return Leaf(a.field, a.op, a.values + b.values, a.cased, a.flags, literals if keep_literals else ())
