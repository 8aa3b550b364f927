"""The mapping files: for each event provider, which ECS fields its event data gives, and what its events are.

One YAML file per provider in ``mappings/``, read once at import. A file says::

    provider: Microsoft-Windows-Sysmon     # System/Provider/@Name, as the record has it
    fields:                                # event_data field -> ECS field, for every event of the provider
      Image: process.executable            #   the value as it is (not when it is "", "-" or a list)
      ProcessId: {to: process.pid, as: integer}   # converted (converters.CONVERTERS) or mapped
      User: {to: user, as: domain_user}           # (converters.MAPPERS) into several fields under "to"
    events:                                # kinds of event, each event id in one entry
      - ids: [1]
        category: [process]                # event.category and event.type (ECS allowed values)
        type: [start]
        fields:                            # this kind's own fields, over the provider's;
          Hashes: {to: process, as: hashes}  #   null leaves a provider-wide field unmapped
      - ids: [12]
        category: [registry]
        type: [change]                     # unless event_data.EventType is one of these:
        type_from: {field: EventType, values: {CreateKey: creation}}

A file may instead take another provider's ``fields`` with ``fields_from: <provider>``. One file
may have ``host_context``: the keys of the ``Key=Value`` block PowerShell writes about its host
(without spaces, lower case) and their ECS fields, which ``{as: powershell_context}`` (no ``to``)
reads. YAML anchors and aliases share a table between entries.

Everything is checked when the files are read: a file that is not valid says so with
:class:`MappingError`, naming the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError

from secmon.collect.transforms.normalize_winlog.converters import (
    CONVERTERS,
    MAPPERS,
    POWERSHELL_CONTEXT,
    Convert,
    HostContext,
    Mapper,
    Rule,
    powershell_context,
)
from secmon.collect.transforms.normalize_winlog.event_data import EventDataValue
from secmon.collect.transforms.normalize_winlog.values import NONE, FieldPath
from secmon.errors import SecmonError
from secmon.events import Event
from secmon.yaml_loader import SafeLoader, yaml_problem

MAPPINGS_DIRECTORY: Final = Path(__file__).parent / "mappings"

_ECS_FIELD = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
# ECS's allowed values of event.category and event.type.
_CATEGORIES: Final = frozenset(
    [
        "api",
        "authentication",
        "configuration",
        "database",
        "driver",
        "email",
        "file",
        "host",
        "iam",
        "intrusion_detection",
        "library",
        "malware",
        "network",
        "package",
        "process",
        "registry",
        "session",
        "threat",
        "vulnerability",
        "web",
    ]
)
_TYPES: Final = frozenset(
    [
        "access",
        "admin",
        "allowed",
        "change",
        "connection",
        "creation",
        "deletion",
        "denied",
        "end",
        "error",
        "group",
        "indicator",
        "info",
        "installation",
        "protocol",
        "start",
        "user",
    ]
)
_FILE_KEYS: Final = frozenset(("provider", "fields", "fields_from", "events", "host_context"))
_ENTRY_KEYS: Final = frozenset(("ids", "category", "type", "type_from", "fields"))

Location = tuple[str | int, ...]  # keys and indices from the document's root to a value


class MappingError(SecmonError):
    """A mapping file is invalid; the message ends with its path and line."""

    def __init__(self, reason: str, *, path: str, line: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        super().__init__(f"{reason} in {path}:{line}" if line else f"{reason} in {path}")


@dataclass(frozen=True, slots=True)
class EventEntry:
    """What a mapping file says of one event id."""

    fields: Mapping[str, Rule | None] = field(default_factory=dict)  # None: not mapped for this event
    category: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    type_field: str | None = None  # the event_data field whose value chooses event.type ...
    types_by_value: Mapping[str, str] = field(default_factory=dict)  # ... by this table, else ``types``


@dataclass(frozen=True, slots=True)
class ProviderMapping:
    """The mapping file of one provider, with its rules built."""

    fields: Mapping[str, Rule]
    events: Mapping[str, EventEntry]


# ---------------------------------------------------------------------------------------------
# Reading the files


class _MappingLoader(SafeLoader):
    """The project's YAML loader, but a key written twice in one mapping is an error, not the last one kept."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise ConstructorError(None, None, f"{key_node.value!r} is written twice", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


class _Invalid(Exception):
    """A problem with the value at ``location`` of the document being checked."""

    def __init__(self, reason: str, location: Location) -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location


@dataclass(frozen=True, slots=True)
class _Spec:
    """One field's entry as written: where it goes and through what (``None`` for "copy it")."""

    target: FieldPath | None
    convert: str | None
    location: Location


@dataclass(slots=True)
class _Entry:
    ids: list[str]
    category: tuple[str, ...] | None
    types: tuple[str, ...] | None
    type_field: str | None
    types_by_value: dict[str, str]
    fields: dict[str, _Spec | None]
    location: Location


@dataclass(slots=True)
class _File:
    path: Path
    text: str
    provider: str
    fields: dict[str, _Spec]
    fields_from: str | None
    events: list[_Entry]
    host_context: dict[str, _Spec] | None

    def error(self, reason: str, location: Location) -> MappingError:
        return MappingError(reason, path=str(self.path), line=_line_of(self.text, location))


def load_mappings(directory: Path = MAPPINGS_DIRECTORY) -> dict[str, ProviderMapping]:
    """The mapping of every provider that has a file (``*.yml``) in ``directory``, by provider name."""
    files: dict[str, _File] = {}
    for path in sorted(directory.glob("*.yml")):
        mapping_file = _read(path)
        if mapping_file.provider in files:
            other = files[mapping_file.provider].path.name
            raise mapping_file.error(f"provider {mapping_file.provider!r} already has {other}", ("provider",))
        files[mapping_file.provider] = mapping_file

    with_context = [mapping_file for mapping_file in files.values() if mapping_file.host_context is not None]
    if len(with_context) > 1:
        raise with_context[1].error(f"host_context is already in {with_context[0].path.name}", ("host_context",))
    context_rule: Rule | None = None
    if with_context:
        context_file = with_context[0]
        specs = context_file.host_context or {}
        context: HostContext = {
            name: (_build(spec, None, context_file), ".".join(spec.target or ())) for name, spec in specs.items()
        }
        context_rule = powershell_context(context)

    providers: dict[str, ProviderMapping] = {}
    for mapping_file in files.values():
        own_fields = mapping_file.fields
        if mapping_file.fields_from is not None:
            source = files.get(mapping_file.fields_from)
            if source is None or source.fields_from is not None:
                reason = f"fields_from names {mapping_file.fields_from!r}, which no file gives fields of its own"
                raise mapping_file.error(reason, ("fields_from",))
            own_fields = source.fields
            fields = {name: _build(spec, context_rule, source) for name, spec in own_fields.items()}
        else:
            fields = {name: _build(spec, context_rule, mapping_file) for name, spec in own_fields.items()}
        events: dict[str, EventEntry] = {}
        for entry in mapping_file.events:
            entry_fields: dict[str, Rule | None] = {}
            for name, spec in entry.fields.items():
                if spec is None:
                    if name not in own_fields:
                        reason = f"{name}: null leaves unmapped a field the provider's fields do not map"
                        raise mapping_file.error(reason, (*entry.location, "fields", name))
                    entry_fields[name] = None
                else:
                    entry_fields[name] = _build(spec, context_rule, mapping_file)
            built = EventEntry(entry_fields, entry.category, entry.types, entry.type_field, entry.types_by_value)
            events.update(dict.fromkeys(entry.ids, built))
        providers[mapping_file.provider] = ProviderMapping(fields, events)
    return providers


def _read(path: Path) -> _File:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read the mapping file: {exc}", path=str(path)) from exc
    try:
        document = yaml.load(text, Loader=_MappingLoader)
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc, text)
        raise MappingError(f"not a valid mapping file: {problem.reason}", path=str(path), line=problem.line) from exc
    try:
        return _check_file(path, text, document)
    except _Invalid as invalid:
        raise MappingError(invalid.reason, path=str(path), line=_line_of(text, invalid.location)) from None


# ---------------------------------------------------------------------------------------------
# Checking what a file says


def _check_file(path: Path, text: str, document: Any) -> _File:
    if not isinstance(document, dict):
        raise _Invalid("a mapping file is a mapping with 'provider' and 'fields' or 'events'", ())
    _check_keys(document, _FILE_KEYS, ())
    provider = document.get("provider")
    if not isinstance(provider, str) or not provider:
        raise _Invalid("'provider' must name the provider, as System/Provider/@Name has it", ("provider",))
    if "fields" in document and "fields_from" in document:
        raise _Invalid("a file has either 'fields' or 'fields_from', not both", ("fields_from",))
    fields_from = document.get("fields_from")
    if fields_from is not None and not isinstance(fields_from, str):
        raise _Invalid("'fields_from' must name a provider", ("fields_from",))
    fields = _without_nulls(_check_fields(document.get("fields", {}), ("fields",), nulls=False))
    raw_events = document.get("events", [])
    if not isinstance(raw_events, list):
        raise _Invalid("'events' must be a list of entries", ("events",))
    events: list[_Entry] = []
    first_entry_of: dict[str, int] = {}
    for index, raw_entry in enumerate(raw_events):
        entry = _check_entry(raw_entry, ("events", index))
        for id_index, event_id in enumerate(entry.ids):
            if event_id in first_entry_of:
                reason = f"event id {event_id} is already in entry {first_entry_of[event_id] + 1} of 'events'"
                raise _Invalid(reason, ("events", index, "ids", id_index))
            first_entry_of[event_id] = index
        events.append(entry)
    host_context = None
    if "host_context" in document:
        specs = _check_fields(document["host_context"], ("host_context",), nulls=False, in_context=True)
        host_context = _without_nulls(specs)
    return _File(path, text, provider, fields, fields_from, events, host_context)


def _without_nulls(specs: dict[str, _Spec | None]) -> dict[str, _Spec]:
    return {name: spec for name, spec in specs.items() if spec is not None}


def _check_keys(value: dict[Any, Any], allowed: frozenset[str], location: Location) -> None:
    for key in value:
        if key not in allowed:
            raise _Invalid(f"unknown key {key!r} (expected one of {', '.join(sorted(allowed))})", (*location, key))


def _check_entry(raw: Any, location: Location) -> _Entry:
    if not isinstance(raw, dict):
        raise _Invalid("an entry of 'events' is a mapping with 'ids'", location)
    _check_keys(raw, _ENTRY_KEYS, location)
    ids = raw.get("ids")
    if not isinstance(ids, list) or not ids:
        raise _Invalid("'ids' must be a list of event ids", (*location, "ids"))
    for index, event_id in enumerate(ids):
        if type(event_id) is not int or event_id < 0:
            raise _Invalid(f"{event_id!r} is not an event id (a number)", (*location, "ids", index))
    if ("category" in raw) != ("type" in raw):
        raise _Invalid("'category' and 'type' go together", location)
    category = _check_allowed(raw, "category", _CATEGORIES, location)
    types = _check_allowed(raw, "type", _TYPES, location)
    type_field: str | None = None
    types_by_value: dict[str, str] = {}
    if "type_from" in raw:
        type_field, types_by_value = _check_type_from(raw["type_from"], (*location, "type_from"))
        if types is None or len(types) != 1:
            raise _Invalid("'type_from' needs 'type' to be the one type of the other values", (*location, "type"))
    fields = _check_fields(raw.get("fields", {}), (*location, "fields"), nulls=True)
    if category is None and not fields:
        raise _Invalid("an entry says what its events are ('category', 'type') or maps 'fields'", location)
    return _Entry([str(i) for i in ids], category, types, type_field, types_by_value, fields, location)


def _check_allowed(
    raw: dict[str, Any], key: str, allowed: frozenset[str], location: Location
) -> tuple[str, ...] | None:
    if key not in raw:
        return None
    values = raw[key]
    if not isinstance(values, list) or not values:
        raise _Invalid(f"'{key}' must be a list of ECS event.{key} values", (*location, key))
    for index, value in enumerate(values):
        if value not in allowed:
            raise _Invalid(f"{value!r} is not an ECS event.{key} value", (*location, key, index))
    return tuple(values)


def _check_type_from(raw: Any, location: Location) -> tuple[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise _Invalid("'type_from' is {field: <event_data field>, values: {<value>: <type>}}", location)
    _check_keys(raw, frozenset(("field", "values")), location)
    name, values = raw.get("field"), raw.get("values")
    if not isinstance(name, str) or not name:
        raise _Invalid("'field' must name an event_data field", (*location, "field"))
    if not isinstance(values, dict) or not values:
        raise _Invalid("'values' must map event_data values to ECS event.type values", (*location, "values"))
    for value, event_type in values.items():
        if not isinstance(value, str) or event_type not in _TYPES:
            raise _Invalid(f"{value!r}: {event_type!r} is not an ECS event.type value", (*location, "values", value))
    return name, values


def _check_fields(raw: Any, location: Location, *, nulls: bool, in_context: bool = False) -> dict[str, _Spec | None]:
    if not isinstance(raw, dict):
        raise _Invalid("a field table maps field names to ECS fields", location)
    specs: dict[str, _Spec | None] = {}
    for name, spec in raw.items():
        where = (*location, name)
        if not isinstance(name, str) or not name:
            raise _Invalid(f"{name!r} is not a field name", where)
        if spec is None:
            if not nulls:
                raise _Invalid(f"{name}: null (not mapped) only overrides a provider field in an entry", where)
            specs[name] = None
        elif isinstance(spec, str):
            specs[name] = _Spec(_check_target(spec, where), None, where)
        elif isinstance(spec, dict):
            specs[name] = _check_converted(name, spec, where, in_context)
        else:
            raise _Invalid(f"{name}: expected an ECS field or {{to: <ECS field>, as: <converter>}}", where)
    return specs


def _check_converted(name: str, spec: dict[str, Any], where: Location, in_context: bool) -> _Spec:
    _check_keys(spec, frozenset(("to", "as")), where)
    convert = spec.get("as")
    known = [*CONVERTERS, *MAPPERS, *(() if in_context else (POWERSHELL_CONTEXT,))]
    if convert not in known:
        raise _Invalid(f"{name}: 'as' must be one of {', '.join(known)}, not {convert!r}", (*where, "as"))
    if convert == POWERSHELL_CONTEXT:
        if "to" in spec:
            raise _Invalid(f"{name}: {POWERSHELL_CONTEXT} writes where host_context says, so takes no 'to'", where)
        return _Spec(None, convert, where)
    if not isinstance(spec.get("to"), str):
        raise _Invalid(f"{name}: 'to' must be the ECS field to write", where)
    return _Spec(_check_target(spec["to"], (*where, "to")), convert, where)


def _check_target(target: str, where: Location) -> FieldPath:
    if not _ECS_FIELD.fullmatch(target):
        raise _Invalid(f"{target!r} is not an ECS field name (dotted, lower case)", where)
    return tuple(target.split("."))


def _line_of(text: str, location: Location) -> int | None:
    """The line (1-based) of the value at ``location`` in ``text``, or of the nearest enclosing one found."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in location:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(step):
                    line, child = key_node.start_mark.line + 1, value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


# ---------------------------------------------------------------------------------------------
# Building the rules


def _build(spec: _Spec, context_rule: Rule | None, where: _File) -> Rule:
    if spec.convert == POWERSHELL_CONTEXT:
        if context_rule is None:
            raise where.error(f"{POWERSHELL_CONTEXT} needs a host_context table, and no file has one", spec.location)
        return context_rule
    assert spec.target is not None  # every other kind of spec was checked to have one
    if spec.convert is None:
        return _copy_rule(spec.target)
    if spec.convert in MAPPERS:
        return _mapper_rule(MAPPERS[spec.convert], spec.target)
    return _convert_rule(CONVERTERS[spec.convert], spec.target)


def _copy_rule(path: FieldPath) -> Rule:
    """The rule copying a string value to ``path``, unless it says "none"."""
    parents, leaf = path[:-1], path[-1]

    def rule(event: Event, value: EventDataValue) -> None:
        if type(value) is not str or value in NONE:
            return
        target = event
        for key in parents:
            child = target.get(key)
            if type(child) is not dict:
                child = target[key] = {}
            target = child
        target[leaf] = value

    return rule


def _convert_rule(convert: Convert, path: FieldPath) -> Rule:
    """The rule writing the converted value to ``path``, unless the converter gives None."""
    parents, leaf = path[:-1], path[-1]

    def rule(event: Event, value: EventDataValue) -> None:
        converted = convert(value)
        if converted is None:
            return
        target = event
        for key in parents:
            child = target.get(key)
            if type(child) is not dict:
                child = target[key] = {}
            target = child
        target[leaf] = converted

    return rule


def _mapper_rule(mapper: Mapper, path: FieldPath) -> Rule:
    return lambda event, value: mapper(event, path, value)
