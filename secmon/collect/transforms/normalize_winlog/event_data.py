"""A record's EventData and UserData as ``winlog.event_data`` and ``winlog.user_data``: names and string values."""

from __future__ import annotations

import re
from typing import Any

from secmon.collect.transforms.normalize_winlog.values import as_string, attributes, compact_json, is_str_list

EventDataValue = str | list[str]
EventData = dict[str, EventDataValue]

_PARAM = re.compile(r"param(\d+)")
_MARKUP = frozenset(("Data", "#text", "#attributes", ""))  # EventData keys that are not field names
_MAX_DEPTH = 32  # deeper UserData is kept as JSON text rather than recursed into


def evtx_event_data(node: Any) -> EventData:
    """EventData as {name: value}: named Data by name, other fields by key, unnamed Data as paramN."""
    data: EventData = {}
    unnamed: list[Any] = []  # values of Data elements without a Name, in document order
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in _MARKUP:  # the common case first: a named field with a scalar value
                value_type = type(value)
                if value_type is str:
                    data[key] = value
                    continue
                if value_type is int:
                    data[key] = str(value)
                    continue
            if key == "Data":
                _collect_data_elements(value, data, unnamed)
            elif key == "#text":
                _collect_data_elements(node, data, unnamed, text_only=True)
            elif key != "#attributes" and key:  # the EventData element's own attributes are not data
                add_value(data, key, value)
    elif isinstance(node, list):
        for item in node:
            _collect_data_elements(item, data, unnamed)
    elif node is not None:
        unnamed.append(node)
    for number, value in enumerate(unnamed, 1):
        if f"param{number}" not in data:
            add_value(data, f"param{number}", value)
    return data


def _collect_data_elements(node: Any, data: EventData, unnamed: list[Any], *, text_only: bool = False) -> None:
    """Data elements: {"#attributes": {"Name": n}, "#text": v} is named, {"#text": [v1, v2]} is unnamed ones."""
    if isinstance(node, list):
        for item in node:
            _collect_data_elements(item, data, unnamed)
        return
    if not isinstance(node, dict):
        unnamed.append(node)
        return
    name = None if text_only else attributes(node).get("Name")
    text = node.get("#text")
    if isinstance(name, str) and name:
        add_value(data, name, text)
    elif isinstance(text, list):
        unnamed.extend(text)
    else:
        unnamed.append(text)


def add_value(data: EventData, name: str, value: Any) -> None:
    """Add ``value`` as a string (or list of strings) under ``name``, unless it is null."""
    if isinstance(value, list):
        strings = [text for item in value if (text := as_string(item)) is not None]
        if strings:
            data[name] = strings
        return
    text = as_string(value)
    if text is not None:
        data[name] = text


def user_data(node: Any, *, named: bool = False) -> dict[str, Any] | None:
    """UserData as {"xml_name": <its one child element>, <field>: <value>...}; ``named`` when already so."""
    if node is None:
        return None
    if not isinstance(node, dict):
        text = as_string(node)
        return {"text": text} if text is not None else None
    if not named:
        children = [(key, value) for key, value in node.items() if key != "#attributes"]
        if len(children) == 1 and isinstance(children[0][1], dict):
            name, body = children[0]
            return {"xml_name": name, **plain(body)}
    return plain(node) or None


def plain(node: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A nested element as plain nested {name: string}, without namespace declarations and nulls."""
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "#attributes" and isinstance(value, dict):
            for attribute, attribute_value in value.items():
                text = as_string(attribute_value)
                if not attribute.startswith("xmlns") and text is not None:
                    result.setdefault(attribute, text)
        elif isinstance(value, dict) and "#text" not in value:
            nested = plain(value, depth + 1) if depth < _MAX_DEPTH else {"json": compact_json(value)}
            if nested:
                result[key] = nested
        elif isinstance(value, list):
            strings = [text for item in value if (text := as_string(item)) is not None]
            if strings:
                result[key] = strings
        elif (text := as_string(value)) is not None:
            result[key] = text
    return result


def set_event_data(winlog: dict[str, Any], event_data: EventData, user_data: dict[str, Any] | None) -> None:
    """Put ``event_data`` and ``user_data`` into ``winlog``, with the copies Sigma rules look for.

    A record without EventData gets its UserData fields as event data too (a rule does not say
    which block a field is in), and unnamed ``paramN`` fields are also the list ``Data``.
    """
    if user_data:
        winlog["user_data"] = user_data
        if not event_data:
            for name, value in user_data.items():
                if name != "xml_name" and (isinstance(value, str) or is_str_list(value)):
                    event_data[name] = value
    if "param1" in event_data and "Data" not in event_data:
        params = sorted((int(m[1]), name) for name in event_data if (m := _PARAM.fullmatch(name)))
        unnamed = [value for _, name in params if isinstance(value := event_data[name], str)]
        if unnamed:
            event_data["Data"] = unnamed
    if event_data:
        winlog["event_data"] = event_data
