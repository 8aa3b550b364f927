"""Reading an event's fields the way Sigma compares them, each field read at most once per event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# Where Sigma keywords (values without a field) are searched: the parsed message and the raw line.
KEYWORD_FIELDS = ("message", "event.original")

_ABSENT = object()
_SPLIT: dict[str, tuple[str, str]] = {}  # "a.b.c" -> ("a.b", "c"), computed once per field name


def split_field(field: str) -> tuple[str, str]:
    """A dotted field as (parent path, last name); the parent is "" for a top-level field."""
    parts = _SPLIT.get(field)
    if parts is None:
        parent, _, name = field.rpartition(".")
        parts = _SPLIT[field] = (parent, name)
    return parts


class EventView:
    """One event as the matcher sees it: a field's values as text, lowercased text, or raw.

    A field is found as :func:`secmon.events.get_field` finds it (nested objects, then a key that
    itself contains dots). A field holding a list has all its elements as values (as Elasticsearch
    matches them); a null is no value, though the field exists. Everything is read lazily and memoized: an event
    usually needs a few of its fields, and many rules read the same ones.
    """

    __slots__ = ("_dotted_keys", "_lowered", "_nodes", "_raw", "_texts", "event")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self._nodes: dict[str, Any] = {"": event}
        self._raw: dict[str, tuple[Any, ...]] = {}
        self._texts: dict[str, tuple[str, ...]] = {}
        self._lowered: dict[str, tuple[str, ...]] = {}
        self._dotted_keys: list[str] | None = None

    def node(self, path: str) -> Any:
        """The object at ``path`` ("" is the event), or None."""
        found = self._nodes.get(path, _ABSENT)  # not try/except: a first look per event would raise
        if found is _ABSENT:
            parent, name = split_field(path)
            above = self.node(parent)
            found = self._nodes[path] = above.get(name) if type(above) is dict else None
        return found

    def raw(self, field: str) -> tuple[Any, ...]:
        """The field's non-null values as stored (lists flattened)."""
        values = self._raw.get(field)
        if values is None:
            parent, name = split_field(field)
            above = self.node(parent)
            value = above.get(name, _ABSENT) if type(above) is dict else _ABSENT
            if value is _ABSENT and parent:
                value = self.event.get(field)  # a key that itself contains dots
            values = self._raw[field] = _values(value)
        return values

    def texts(self, field: str) -> tuple[str, ...]:
        """The field's values as text: numbers in decimal, booleans as ``true``/``false``."""
        values = self._texts.get(field)
        if values is None:
            raw = self.raw(field)
            if len(raw) == 1 and type(raw[0]) is str:
                values = raw
            else:
                values = tuple(t for t in map(_text, raw) if t is not None)
            self._texts[field] = values
        return values

    def lowered(self, field: str) -> tuple[str, ...]:
        """:meth:`texts`, lowercased: what case-insensitive comparisons use."""
        values = self._lowered.get(field)
        if values is None:
            texts = self.texts(field)
            values = self._lowered[field] = (texts[0].lower(),) if len(texts) == 1 else tuple(t.lower() for t in texts)
        return values

    def present(self, field: str) -> bool:
        """Whether the field exists, even with a null or empty value (Sigma's ``exists``)."""
        parent, name = split_field(field)
        above = self.node(parent)
        return (type(above) is dict and name in above) or field in self.event

    def present_among(self, parent: str, names: frozenset[str]) -> Iterable[str]:
        """Which of ``names`` (children of ``parent``) the event has: one set intersection, in C."""
        above = self.node(parent)
        found: Iterable[str] = names.intersection(above) if type(above) is dict else ()
        if self._dotted_keys is None:
            self._dotted_keys = [key for key in self.event if "." in key]
        if self._dotted_keys and parent:
            prefix = parent + "."
            extra = {k[len(prefix) :] for k in self._dotted_keys if k.startswith(prefix)} & names
            found = set(found) | extra
        return found


def _values(value: Any) -> tuple[Any, ...]:
    kind = type(value)
    if value is None or value is _ABSENT or kind is dict:
        return ()  # an object is not a value Sigma can compare
    if kind is list or kind is tuple:
        return tuple(v for v in value if v is not None and type(v) not in (list, dict))
    return (value,)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def event_time(event: Mapping[str, Any]) -> float:
    """The event's ``@timestamp`` in epoch seconds (now when it has none that parses)."""
    stamp = event.get("@timestamp")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return datetime.now(UTC).timestamp()
