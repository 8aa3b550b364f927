"""Reading an event's fields the way Sigma compares them, each field read at most once per event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where Sigma keywords (values without a field) are searched: the parsed message and the raw line.
KEYWORD_FIELDS = ("message", "event.original")

_ABSENT = object()


class EventView:
    """One event as the matcher sees it: a field's values as text, lowercased text, or raw.

    The event is flattened once into ``{"dotted.path": values}``: a list contributes all its
    elements (as Elasticsearch matches them), a null contributes no value but the field still
    exists. Text conversions are memoized, since many rules read the same few fields.
    """

    __slots__ = ("_lowered", "_texts", "event", "flat")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self.flat: dict[str, tuple[Any, ...]] = {}
        _flatten_into(self.flat, event, "")
        self._texts: dict[str, tuple[str, ...]] = {}
        self._lowered: dict[str, tuple[str, ...]] = {}

    def raw(self, field: str) -> tuple[Any, ...]:
        """The field's non-null values as stored (lists flattened)."""
        return self.flat.get(field, ())

    def texts(self, field: str) -> tuple[str, ...]:
        """The field's values as text: numbers in decimal, booleans as ``true``/``false``."""
        values = self._texts.get(field)
        if values is None:
            raw = self.flat.get(field)
            if not raw:
                return ()
            values = self._texts[field] = tuple(t for t in map(_text, raw) if t is not None)
        return values

    def lowered(self, field: str) -> tuple[str, ...]:
        """:meth:`texts`, lowercased: what case-insensitive comparisons use."""
        values = self._lowered.get(field)
        if values is None:
            values = self._lowered[field] = tuple(t.lower() for t in self.texts(field))
        return values

    def present(self, field: str) -> bool:
        """Whether the field exists, even with a null or empty value (Sigma's ``exists``)."""
        return field in self.flat or lookup(self.event, field, _ABSENT) is not _ABSENT


def _flatten_into(flat: dict[str, tuple[Any, ...]], node: Mapping[str, Any], prefix: str) -> None:
    # Concrete type checks: events are decoded JSON, and an ABC isinstance costs 4x as much.
    for key, value in node.items():
        kind = type(value)
        if kind is dict:
            _flatten_into(flat, value, prefix + key + ".")
        elif kind is list:
            flat[prefix + key] = tuple(v for v in value if v is not None and type(v) not in (list, dict))
        else:
            flat[prefix + key] = () if value is None else (value,)


def lookup(event: Mapping[str, Any], field: str, default: Any = None) -> Any:
    """The value at a dotted ``field``: nested objects first, then a key that itself contains dots."""
    node: Any = event
    for part in field.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return event.get(field, default)
    return node


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None
