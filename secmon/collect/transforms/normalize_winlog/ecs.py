"""The ECS fields an event's ``winlog.event_data`` implies, by the mapping file of its provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from secmon.collect.transforms.normalize_winlog.converters import Rule
from secmon.collect.transforms.normalize_winlog.event_data import EventDataValue
from secmon.collect.transforms.normalize_winlog.mappings import EventEntry, ProviderMapping, load_mappings
from secmon.events import Event

PROVIDERS: Final[Mapping[str, ProviderMapping]] = load_mappings()


@dataclass(frozen=True, slots=True)
class EventKind:
    """What one provider's events of one id map to: the provider's fields with the event's own applied."""

    fields: Mapping[str, Rule]
    category: tuple[str, ...] | None
    types: tuple[str, ...] | None
    type_field: str | None
    types_by_value: Mapping[str, str]


_NO_ENTRY: Final = EventEntry()


@lru_cache(maxsize=1024)
def kind_of(provider: str, event_id: str) -> EventKind:
    """The mapping of one kind of event, merged once rather than per event."""
    mapping = PROVIDERS.get(provider)
    if mapping is None:
        return EventKind({}, None, None, None, {})
    entry = mapping.events.get(event_id, _NO_ENTRY)
    merged = {**mapping.fields, **entry.fields}
    fields = {name: rule for name, rule in merged.items() if rule is not None}
    return EventKind(fields, entry.category, entry.types, entry.type_field, entry.types_by_value)


def map_event_data(event: Event, provider: str, event_id: str, event_data: Mapping[str, EventDataValue]) -> None:
    """Set the ECS fields ``event_data`` implies for this provider and event id (both inputs use this)."""
    kind = kind_of(provider, event_id)
    table = kind.fields
    if table:
        for name, value in event_data.items():
            rule = table.get(name)
            if rule is not None:
                rule(event, value)
    if kind.category is not None:
        types = kind.types or ()
        if kind.type_field is not None:
            chosen = event_data.get(kind.type_field)
            if isinstance(chosen, str):
                types = (kind.types_by_value.get(chosen, types[0]),)
        ecs_event = event.setdefault("event", {})
        ecs_event["category"], ecs_event["type"] = list(kind.category), list(types)
    process = event.get("process")
    if process is not None:
        _name_from_path(process, "executable")
        _name_from_path(process.get("parent"), "executable")
    _name_from_path(event.get("file"), "path")


def _name_from_path(group: Any, path_field: str) -> None:
    """<group>.name (and for files .directory and .extension) from a Windows path."""
    if not isinstance(group, dict):
        return
    path = group.get(path_field)
    if not isinstance(path, str) or "name" in group:
        return
    directory, separator, name = path.replace("/", "\\").rpartition("\\")
    if not name:
        return
    group["name"] = name
    if path_field == "path":
        if separator and directory:
            group["directory"] = directory
        stem, dot, extension = name.rpartition(".")
        if dot and stem and extension:
            group["extension"] = extension
