"""Single values of a Windows event record as the normalized event keeps them, and writing them into it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

NONE = ("", "-")  # what Windows writes for "no value"
FieldPath = tuple[str, ...]

_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z")


def attributes(node: Any) -> dict[str, Any]:
    """The XML attributes of an element as the evtx parser renders it, or {}."""
    if isinstance(node, dict):
        node_attributes = node.get("#attributes")
        if isinstance(node_attributes, dict):
            return node_attributes
    return {}


def as_string(value: Any) -> str | None:
    """A scalar as event data text (booleans as the XML writes them); an element by its text; else JSON."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and "#text" in value and not isinstance(value["#text"], list | dict):
        return as_string(value["#text"])
    return compact_json(value)


def scalar_text(value: Any) -> str | None:
    """A scalar as text; None for nulls and for elements."""
    if type(value) is str:
        return value
    return None if isinstance(value, dict | list) else as_string(value)


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def to_int(value: Any) -> int | None:
    """An integer from 42, "42" or "0x2a" (Security events write ids in hex), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        try:
            return int(stripped, 16) if stripped[:2].lower() == "0x" else int(stripped)
        except ValueError:
            return None
    return None


def braced(guid: Any) -> Any:
    """A GUID as the XML writes it, in braces: the evtx parser sometimes drops them."""
    if isinstance(guid, str) and guid and not guid.startswith("{"):
        return "{" + guid + "}"
    return guid


def iso_utc(value: Any) -> str | None:
    """``value`` as ISO 8601 UTC ending in Z, or None when it is not a time."""
    if not isinstance(value, str):
        return None
    if _ISO_UTC.fullmatch(value):
        return value
    stripped = value.strip().removesuffix(" UTC")  # evtx before 0.8 wrote "2019-04-27 15:57:25.868863 UTC"
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> str:
    """The time now, ISO UTC to the microsecond."""
    moment = time.time()
    second = int(moment)
    return f"{_iso_second(second)}.{int((moment - second) * 1_000_000):06d}Z"


@lru_cache(maxsize=2)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits, nesting beyond orjson's limit
        return repr(value)


def put(event: dict[str, Any], path: FieldPath, value: Any) -> None:
    """``set_field`` with the dotted name split once, when the mappings are loaded, rather than per event."""
    target = event
    for key in path[:-1]:
        child = target.get(key)
        if type(child) is not dict:
            child = target[key] = {}
        target = child
    target[path[-1]] = value
