"""Windows event log records to ECS events, from .evtx files and from Winlogbeat.

Both inputs end in one shape, so a Sigma rule matches an event the same way whichever way it came:

* ``winlog.*`` keeps the record as Windows wrote it, under Winlogbeat's field names:
  ``winlog.event_id`` and ``event.code`` are strings, and ``winlog.event_data.<Name>`` holds every
  EventData field under its own name, with its value as a string, which is what Sigma compares.
* ECS fields (``process.*``, ``user.*``, ``source.*``, ``registry.*``...) are derived from
  ``winlog.event_data`` by one function for both inputs, from one table per event provider.

How event data values are kept:

* Scalars become strings: numbers in decimal, booleans as ``"true"``/``"false"`` (as the XML
  has them). Nulls are dropped; empty strings and Windows' ``"-"`` (for "none") are kept, but
  never copied to an ECS field.
* A field with several values (an array substitution) stays a list of strings: Elasticsearch
  and Sigma both treat a list as matching when one of its values matches.
* Data elements without a Name are ``param1``, ``param2``... in document order, as Winlogbeat
  names them. Sigma rules call them ``Data`` (the XML element's name), so their values are also
  kept as the list ``Data``, whenever the event data has ``paramN`` fields and no ``Data``.
* UserData (which some events carry instead of EventData) is ``winlog.user_data``, Winlogbeat's
  shape: ``{"xml_name": <its element>, <field>: <value>...}``. Sigma rules do not say which block
  a field is in, so when a record has no EventData the UserData fields are also copied to
  ``winlog.event_data``.

Transforms never raise on bad input: a record without a System element, an event id or a time
is still an event, tagged with :func:`~secmon.events.mark_parse_failure`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from secmon.events import Event, get_field, mark_parse_failure

EventDataValue = str | list[str]
EventData = dict[str, EventDataValue]

_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z")
_PARAM = re.compile(r"param(\d+)")
_NONE = ("", "-")  # what Windows writes for "no value"
_MARKUP = frozenset(("Data", "#text", "#attributes", ""))  # EventData keys that are not field names
_MAX_DEPTH = 32  # deeper UserData is kept as JSON text rather than recursed into

_LEVELS: Final = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}
_AUDIT_SUCCESS = 0x20000000000000
_AUDIT_FAILURE = 0x10000000000000

# Elastic's Windows integration names these data streams; other channels get "windows.<slug>".
_DATASETS: Final = {
    "Security": "windows.security",
    "System": "windows.system",
    "Application": "windows.application",
    "Windows PowerShell": "windows.powershell",
    "Microsoft-Windows-PowerShell/Operational": "windows.powershell_operational",
    "Microsoft-Windows-Sysmon/Operational": "windows.sysmon_operational",
    "ForwardedEvents": "windows.forwarded",
}

SYSMON: Final = "Microsoft-Windows-Sysmon"
SECURITY_AUDITING: Final = "Microsoft-Windows-Security-Auditing"
EVENTLOG: Final = "Microsoft-Windows-Eventlog"
POWERSHELL: Final = "Microsoft-Windows-PowerShell"
POWERSHELL_CLASSIC: Final = "PowerShell"
SERVICE_CONTROL_MANAGER: Final = "Service Control Manager"


# ---------------------------------------------------------------------------------------------
# The two entry points


def normalize_evtx(event: dict[str, Any], *, path: str | None = None, created: str | None = None) -> Event:
    """An ECS event from an evtx ``Event`` object; ``created`` (ISO time read) defaults to now."""
    original = _compact_json({"Event": event})
    if not isinstance(event, dict):
        return _unusable(original, "the record is not an object", path)
    system = event.get("System")
    if not isinstance(system, dict):
        return _unusable(original, "the record has no System element", path)

    provider = _attributes(system.get("Provider"))
    correlation = _attributes(system.get("Correlation"))
    fields = {
        "channel": _text(system.get("Channel")),
        "provider_name": _text(provider.get("Name")),
        "provider_guid": _text(_braced(provider.get("Guid"))),
        "event_id": _event_id(system.get("EventID")),
        "record_id": _to_int(system.get("EventRecordID")),
        "computer_name": _text(system.get("Computer")),
        "process": _process(_attributes(system.get("Execution")), "ProcessID", "ThreadID"),
        "user": _without_nulls({"identifier": _text(_attributes(system.get("Security")).get("UserID"))}) or None,
        "keywords": _text(system.get("Keywords")),
        "opcode": _text(system.get("Opcode")),
        "task": _text(system.get("Task")),
        "version": _to_int(system.get("Version")),
        "activity_id": _text(correlation.get("ActivityID")),
        "related_activity_id": _text(correlation.get("RelatedActivityID")),
    }
    winlog = _without_nulls(fields)
    _set_event_data(winlog, _evtx_event_data(event.get("EventData")), _user_data(event.get("UserData")))
    processing_error = event.get("ProcessingErrorData")
    if isinstance(processing_error, dict):  # Windows could not render the event data with its template
        winlog["processing_error_data"] = _plain(processing_error)

    level = system.get("Level")
    timestamp = _attributes(system.get("TimeCreated")).get("SystemTime")
    result = _assemble(winlog, _iso_utc(timestamp), _LEVELS.get(level) if isinstance(level, int) else None)
    result["event"]["created"] = created or _now()
    result["event"]["original"] = original
    if path is not None:
        result["log"] = {**result.get("log", {}), "file": {"path": path}}
    return result


def normalize_winlogbeat(doc: dict[str, Any], *, created: str | None = None) -> Event:
    """An ECS event from a document as Winlogbeat ships it, in the same shape as :func:`normalize_evtx`."""
    if not isinstance(doc, dict):
        return _unusable(_compact_json(doc), "the document is not an object", None)
    shipped = doc.get("event")
    shipped_event: dict[str, Any] = shipped if isinstance(shipped, dict) else {}
    original = shipped_event.get("original")
    if not isinstance(original, str):
        original = _compact_json(doc)
    source = doc.get("winlog")
    if not isinstance(source, dict):
        return _unusable(original, "the document has no winlog object", None)

    # Start from what Winlogbeat rendered (task and opcode names, resolved user names, its API)
    # and replace everything this module derives, so nothing stale from a Winlogbeat module stays.
    winlog = {key: value for key, value in source.items() if key not in ("event_data", "user_data", "logon")}
    for key in ("channel", "provider_name", "computer_name", "opcode", "task", "activity_id", "related_activity_id"):
        winlog.pop(key, None)
        _put_text(winlog, key, source.get(key))
    winlog.pop("provider_guid", None)
    _put_text(winlog, "provider_guid", _braced(source.get("provider_guid")))
    winlog.pop("event_id", None)
    _put_text(winlog, "event_id", _event_id(source.get("event_id")) or _event_id(shipped_event.get("code")))
    for key in ("record_id", "version"):
        winlog.pop(key, None)
        _put_int(winlog, key, source.get(key))
    if isinstance(source.get("process"), dict):
        winlog.pop("process")
        process = source["process"]
        thread = process.get("thread")
        if process := _process({**process, **(thread if isinstance(thread, dict) else {})}, "pid", "id"):
            winlog["process"] = process
    shipped_data = source.get("event_data")
    event_data: EventData = {}
    if isinstance(shipped_data, dict):
        for name, value in shipped_data.items():
            _add_value(event_data, str(name), value)
    _set_event_data(winlog, event_data, _user_data(source.get("user_data"), named=True))

    level = get_field(doc, "log.level")
    result = _assemble(winlog, _iso_utc(doc.get("@timestamp")), level if isinstance(level, str) else None)
    event = result["event"]
    shipped_created = shipped_event.get("created")
    event["created"] = shipped_created if isinstance(shipped_created, str) else created or _now()
    event["original"] = original
    if isinstance(shipped_event.get("action"), str):
        event["action"] = shipped_event["action"]
    _carry_winlogbeat_context(doc, result)
    return result


# ---------------------------------------------------------------------------------------------
# Shared assembly


def _assemble(winlog: dict[str, Any], timestamp: str | None, level: str | None) -> Event:
    """The ECS event around a normalized ``winlog`` object, with the ECS fields its event data implies."""
    channel = winlog.get("channel")
    provider = winlog.get("provider_name")
    event_id = winlog.get("event_id")
    result: Event = {}
    if timestamp is not None:
        result["@timestamp"] = timestamp
    event: dict[str, Any] = {"kind": "event", "module": "windows", "dataset": dataset_of(channel, provider)}
    if event_id is not None:
        event["code"] = event_id
    if provider is not None:
        event["provider"] = provider
    result["event"] = event
    if "computer_name" in winlog:
        result["host"] = {"name": winlog["computer_name"]}
    if level is not None:
        result["log"] = {"level": level}
    result["winlog"] = winlog

    outcome = _outcome(winlog.get("keywords"))
    if outcome is not None:
        event["outcome"] = outcome
    map_event_data(result, provider or "", event_id or "", winlog.get("event_data", {}))

    if event_id is None:
        mark_parse_failure(result, "the record has no EventID")
    elif timestamp is None:
        mark_parse_failure(result, "the record has no valid TimeCreated")
    return result


def _unusable(original: str, reason: str, path: str | None) -> Event:
    result: Event = {"event": {"kind": "event", "module": "windows", "original": original, "created": _now()}}
    if path is not None:
        result["log"] = {"file": {"path": path}}
    return mark_parse_failure(result, reason)


def _set_event_data(winlog: dict[str, Any], event_data: EventData, user_data: dict[str, Any] | None) -> None:
    if user_data:
        winlog["user_data"] = user_data
        if not event_data:
            for name, value in user_data.items():
                if name != "xml_name" and (isinstance(value, str) or _is_str_list(value)):
                    event_data[name] = value
    if "param1" in event_data and "Data" not in event_data:
        params = sorted((int(m[1]), name) for name in event_data if (m := _PARAM.fullmatch(name)))
        unnamed = [value for _, name in params if isinstance(value := event_data[name], str)]
        if unnamed:
            event_data["Data"] = unnamed
    if event_data:
        winlog["event_data"] = event_data


def _carry_winlogbeat_context(doc: dict[str, Any], result: Event) -> None:
    """Keep what Winlogbeat knew that a record alone does not say: agent, message, tags, its host."""
    for key in ("message", "agent", "ecs", "labels"):
        if key in doc:
            result[key] = doc[key]
    tags = doc.get("tags")
    if isinstance(tags, list):
        result["tags"] = [*tags, *(tag for tag in result.get("tags", []) if tag not in tags)]
    log_doc = doc.get("log")
    if isinstance(log_doc, dict):
        result["log"] = {**log_doc, **result.get("log", {})}
    # Winlogbeat's host.* describes the machine it runs on; that is this event's host only when
    # it names the computer that logged the event (not so for forwarded events).
    host = doc.get("host")
    computer = get_field(result, "winlog.computer_name")
    if isinstance(host, dict):
        name = host.get("name")
        if computer is None or (isinstance(name, str) and name.split(".")[0].lower() == computer.split(".")[0].lower()):
            result["host"] = {**host, **result.get("host", {})}


# ---------------------------------------------------------------------------------------------
# Reading the evtx JSON


def _attributes(node: Any) -> dict[str, Any]:
    """The XML attributes of an element as the evtx parser renders it, or {}."""
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict):
            return attributes
    return {}


def _event_id(value: Any) -> str | None:
    """The event id as a string, from 4624, "4624" or {"#attributes": {"Qualifiers": ...}, "#text": 4624}."""
    if isinstance(value, dict):
        value = value.get("#text")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    return None


def _evtx_event_data(node: Any) -> EventData:
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
                _add_value(data, key, value)
    elif isinstance(node, list):
        for item in node:
            _collect_data_elements(item, data, unnamed)
    elif node is not None:
        unnamed.append(node)
    for number, value in enumerate(unnamed, 1):
        if f"param{number}" not in data:
            _add_value(data, f"param{number}", value)
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
    name = None if text_only else _attributes(node).get("Name")
    text = node.get("#text")
    if isinstance(name, str) and name:
        _add_value(data, name, text)
    elif isinstance(text, list):
        unnamed.extend(text)
    else:
        unnamed.append(text)


def _add_value(data: EventData, name: str, value: Any) -> None:
    """Add ``value`` as a string (or list of strings) under ``name``, unless it is null."""
    if isinstance(value, list):
        strings = [text for item in value if (text := _as_string(item)) is not None]
        if strings:
            data[name] = strings
        return
    text = _as_string(value)
    if text is not None:
        data[name] = text


def _as_string(value: Any) -> str | None:
    """A scalar as event data text (booleans as the XML writes them); an element by its text; else JSON."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and "#text" in value and not isinstance(value["#text"], list | dict):
        return _as_string(value["#text"])
    return _compact_json(value)


def _user_data(node: Any, *, named: bool = False) -> dict[str, Any] | None:
    """UserData as {"xml_name": <its one child element>, <field>: <value>...}; ``named`` when already so."""
    if node is None:
        return None
    if not isinstance(node, dict):
        text = _as_string(node)
        return {"text": text} if text is not None else None
    if not named:
        children = [(key, value) for key, value in node.items() if key != "#attributes"]
        if len(children) == 1 and isinstance(children[0][1], dict):
            name, body = children[0]
            return {"xml_name": name, **_plain(body)}
    return _plain(node) or None


def _plain(node: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A nested element as plain nested {name: string}, without namespace declarations and nulls."""
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "#attributes" and isinstance(value, dict):
            for attribute, attribute_value in value.items():
                text = _as_string(attribute_value)
                if not attribute.startswith("xmlns") and text is not None:
                    result.setdefault(attribute, text)
        elif isinstance(value, dict) and "#text" not in value:
            nested = _plain(value, depth + 1) if depth < _MAX_DEPTH else {"json": _compact_json(value)}
            if nested:
                result[key] = nested
        elif isinstance(value, list):
            strings = [text for item in value if (text := _as_string(item)) is not None]
            if strings:
                result[key] = strings
        elif (text := _as_string(value)) is not None:
            result[key] = text
    return result


# ---------------------------------------------------------------------------------------------
# Small conversions


def _text(value: Any) -> str | None:
    """A scalar as text; None for nulls and for elements."""
    if type(value) is str:
        return value
    return None if isinstance(value, dict | list) else _as_string(value)


def _without_nulls(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _process(attributes: dict[str, Any], pid_key: str, thread_key: str) -> dict[str, Any] | None:
    """winlog.process from the ids of the process and thread that logged the event."""
    process: dict[str, Any] = {}
    if (pid := _to_int(attributes.get(pid_key))) is not None:
        process["pid"] = pid
    if (thread_id := _to_int(attributes.get(thread_key))) is not None:
        process["thread"] = {"id": thread_id}
    return process or None


def _put_text(target: dict[str, Any], dotted: str, value: Any) -> None:
    if isinstance(value, list):  # Winlogbeat renders keywords as a list of names
        strings = [text for item in value if (text := _as_string(item)) is not None]
        if strings:
            _put(target, tuple(dotted.split(".")), strings)
        return
    text = None if isinstance(value, dict) else _as_string(value)
    if text is not None:
        _put(target, tuple(dotted.split(".")), text)


def _put_int(target: dict[str, Any], dotted: str, value: Any) -> None:
    number = _to_int(value)
    if number is not None:
        _put(target, tuple(dotted.split(".")), number)


def _to_int(value: Any) -> int | None:
    """An integer from 42, "42" or "0x2a" (Security events write ids in hex), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            return None
    return None


def _braced(guid: Any) -> Any:
    """A GUID as the XML writes it, in braces: the evtx parser sometimes drops them."""
    if isinstance(guid, str) and guid and not guid.startswith("{"):
        return "{" + guid + "}"
    return guid


def _iso_utc(value: Any) -> str | None:
    """``value`` as ISO 8601 UTC ending in Z, or None when it is not a time."""
    if not isinstance(value, str):
        return None
    if _ISO_UTC.fullmatch(value):
        return value
    text = value.strip().removesuffix(" UTC")  # evtx before 0.8 wrote "2019-04-27 15:57:25.868863 UTC"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> str:
    """The time now, ISO UTC to the microsecond."""
    now = time.time()
    second = int(now)
    return f"{_iso_second(second)}.{int((now - second) * 1_000_000):06d}Z"


@lru_cache(maxsize=2)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits, nesting beyond orjson's limit
        return repr(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _outcome(keywords: Any) -> str | None:
    """success/failure from the audit keywords: a hex mask from evtx, names from Winlogbeat."""
    if isinstance(keywords, str):
        return _outcome_of_mask(keywords)
    if isinstance(keywords, list):
        if "Audit Failure" in keywords:
            return "failure"
        if "Audit Success" in keywords:
            return "success"
    return None


@lru_cache(maxsize=64)
def _outcome_of_mask(keywords: str) -> str | None:
    mask = _to_int(keywords) if keywords[:2].lower() == "0x" else None
    if mask is None:
        return None
    if mask & _AUDIT_FAILURE:
        return "failure"
    if mask & _AUDIT_SUCCESS:
        return "success"
    return None


@lru_cache(maxsize=256)
def dataset_of(channel: str | None, provider: str | None) -> str:
    """``event.dataset`` for a channel: Elastic's name for the well-known ones, else windows.<slug>."""
    if channel in _DATASETS:
        return _DATASETS[channel]
    # Records of ETW traces saved as .evtx have no channel; their provider is the next best name.
    slug = _slug(channel or provider or "")
    return f"windows.{slug or 'unknown'}"


def _slug(name: str) -> str:
    name = re.sub(r"^microsoft-windows-", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# ---------------------------------------------------------------------------------------------
# event_data -> ECS, for both inputs

FieldPath = tuple[str, ...]
Rule = Callable[[Event, EventDataValue], None]  # writes the ECS fields that one event_data field implies
Convert = Callable[[EventDataValue], Any]  # one event_data value to one ECS value, or None for "write nothing"
Mapper = Callable[[Event, FieldPath, EventDataValue], None]  # writes several ECS fields under a path
Table = dict[str, Rule]


def _put(event: dict[str, Any], path: FieldPath, value: Any) -> None:
    """``set_field`` with the dotted name split once, at import, rather than per event."""
    target = event
    for key in path[:-1]:
        child = target.get(key)
        if type(child) is not dict:
            child = target[key] = {}
        target = child
    target[path[-1]] = value


# Converters of one value


def _boolean(value: EventDataValue) -> bool | None:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _ip(value: EventDataValue) -> str | None:
    """Only a valid address: anything else would make Elasticsearch reject the whole event."""
    if not isinstance(value, str) or value in _NONE:
        return None
    address = value.strip().split("%", 1)[0]  # Elasticsearch's ip type takes no IPv6 zone
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


def _listed(value: EventDataValue) -> list[str] | None:
    if isinstance(value, list):
        return value
    return [value] if value not in _NONE else None


def _initiated(value: EventDataValue) -> str | None:
    """Sysmon's Initiated: the host opened the connection (egress) or accepted it (ingress)."""
    initiated = _boolean(value)
    return None if initiated is None else "egress" if initiated else "ingress"


def _ip_version(value: EventDataValue) -> str | None:
    is_ipv6 = _boolean(value)
    return None if is_ipv6 is None else "ipv6" if is_ipv6 else "ipv4"


_WFP_DIRECTIONS: Final = {"%%14592": "ingress", "%%14593": "egress"}


def _wfp_direction(value: EventDataValue) -> str | None:
    return _WFP_DIRECTIONS.get(value) if isinstance(value, str) else None


_LOGON_TYPES: Final = {
    2: "Interactive",
    3: "Network",
    4: "Batch",
    5: "Service",
    7: "Unlock",
    8: "NetworkCleartext",
    9: "NewCredentials",
    10: "RemoteInteractive",
    11: "CachedInteractive",
    12: "CachedRemoteInteractive",
    13: "CachedUnlock",
}


def _logon_type(value: EventDataValue) -> str | None:
    number = _to_int(value)
    return _LOGON_TYPES.get(number) if number is not None else None


# Mappers that write several fields


def _domain_user(event: Event, path: FieldPath, value: EventDataValue) -> None:
    """``DOMAIN\\user`` into <path>.domain and <path>.name."""
    if not isinstance(value, str) or value in _NONE:
        return
    domain, _, name = value.rpartition("\\")
    _put(event, (*path, "name"), name)
    if domain:
        _put(event, (*path, "domain"), domain)


def _hashes(event: Event, path: FieldPath, value: EventDataValue) -> None:
    """Sysmon's ``SHA1=..,MD5=..,SHA256=..,IMPHASH=..`` into <path>.hash.* and <path>.pe.imphash."""
    if not isinstance(value, str):
        return
    for pair in value.split(","):
        algorithm, _, digest = pair.partition("=")
        algorithm = algorithm.strip().lower()
        if not digest or algorithm not in ("md5", "sha1", "sha256", "sha512", "imphash"):
            continue
        _put(event, (*path, "pe", "imphash") if algorithm == "imphash" else (*path, "hash", algorithm), digest.strip())


def _registry(event: Event, path: FieldPath, value: EventDataValue, *, value_event: bool) -> None:
    """A registry path into registry.path, .hive and .key (and .value when it names a value)."""
    if not isinstance(value, str) or value in _NONE:
        return
    _put(event, (*path, "path"), value)
    hive, _, key = value.partition("\\")
    _put(event, (*path, "hive"), hive)
    if value_event:
        key, _, name = key.rpartition("\\")
        _put(event, (*path, "value"), name)
    if key:
        _put(event, (*path, "key"), key)


def _registry_key(event: Event, path: FieldPath, value: EventDataValue) -> None:
    _registry(event, path, value, value_event=False)


def _registry_value(event: Event, path: FieldPath, value: EventDataValue) -> None:
    _registry(event, path, value, value_event=True)


def _powershell_context(event: Event, path: FieldPath, value: EventDataValue) -> None:
    """The ``Key=Value`` lines PowerShell writes about its host into ECS fields.

    Classic events write ``HostApplication=...``, 4103 writes ``Host Application = ...``. The
    command line comes last and may span lines, so it takes the rest of the block: a script
    cannot forge the fields before it.
    """
    if not isinstance(value, str):
        return
    lines = value.splitlines()
    for index, line in enumerate(lines):
        key, equals, text = line.partition("=")
        if not equals:
            continue
        name = key.replace(" ", "").replace("\t", "").lower()
        if name == "commandline":
            text = "\n".join([text, *lines[index + 1 :]])
        context_rule = _POWERSHELL_CONTEXT.get(name)
        if context_rule is not None and get_field(event, context_rule[1]) is None:
            context_rule[0](event, text.strip())
        if name == "commandline":
            return


_MAPPERS: Final = frozenset((_domain_user, _hashes, _registry_key, _registry_value, _powershell_context))


def _rule(convert: Callable[..., Any] | None, path: FieldPath) -> Rule:
    """The rule writing one event_data value at ``path``: copied when ``convert`` is None, else converted."""
    if convert in _MAPPERS:
        mapper: Mapper = convert
        return lambda event, value: mapper(event, path, value)
    parents, leaf = path[:-1], path[-1]

    def rule(event: Event, value: EventDataValue) -> None:
        if convert is None:
            if type(value) is not str or value in _NONE:
                return
            converted: Any = value
        else:
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


Target = str | tuple[Callable[..., Any], str]  # "a.b" (copy the value), or (converter or mapper, "a.b")


def _target_rule(target: Target) -> Rule:
    if isinstance(target, str):
        return _rule(None, tuple(target.split(".")))
    return _rule(target[0], tuple(target[1].split(".")))


def _compile(spec: Mapping[str, Target | None]) -> dict[str, Rule | None]:
    """A table from its readable form; None means "do not map" (it overrides a provider-wide entry)."""
    return {name: None if target is None else _target_rule(target) for name, target in spec.items()}


# The ECS names follow Elastic's Windows integration and the ecs_windows pipeline of
# pySigma-backend-elasticsearch, so rules converted with it find these fields.
_SYSMON_FIELDS = _compile(
    {
        "ProcessGuid": "process.entity_id",
        "ProcessId": (_to_int, "process.pid"),
        "Image": "process.executable",
        "CommandLine": "process.command_line",
        "CurrentDirectory": "process.working_directory",
        "ParentProcessGuid": "process.parent.entity_id",
        "ParentProcessId": (_to_int, "process.parent.pid"),
        "ParentImage": "process.parent.executable",
        "ParentCommandLine": "process.parent.command_line",
        "User": (_domain_user, "user"),
        "Hashes": (_hashes, "file"),
        "OriginalFileName": "file.pe.original_file_name",
        "FileVersion": "file.pe.file_version",
        "Description": "file.pe.description",
        "Product": "file.pe.product",
        "Company": "file.pe.company",
        "TargetFilename": "file.path",
        "ImageLoaded": "file.path",
        "Device": "file.path",
        "PipeName": "file.name",
        "Signed": (_boolean, "file.code_signature.signed"),
        "Signature": "file.code_signature.subject_name",
        "SignatureStatus": "file.code_signature.status",
        "IsExecutable": (_boolean, "sysmon.file.is_executable"),
        "Archived": (_boolean, "sysmon.file.archived"),
        "SourceIp": (_ip, "source.ip"),
        "SourcePort": (_to_int, "source.port"),
        "SourceHostname": "source.domain",
        "DestinationIp": (_ip, "destination.ip"),
        "DestinationPort": (_to_int, "destination.port"),
        "DestinationHostname": "destination.domain",
        "DestinationPortName": "network.protocol",
        "Protocol": "network.transport",
        "Initiated": (_initiated, "network.direction"),
        "SourceIsIpv6": (_ip_version, "network.type"),
        "TargetObject": (_registry_key, "registry"),
        "Details": (_listed, "registry.data.strings"),
        "QueryName": "dns.question.name",
        "QueryStatus": "sysmon.dns.status",
        # Sysmon 8 and 10: the source process acts on a target process (left in event_data).
        "SourceProcessGuid": "process.entity_id",
        "SourceProcessGUID": "process.entity_id",  # the spelling of older Sysmon schemas
        "SourceProcessId": (_to_int, "process.pid"),
        "SourceImage": "process.executable",
        "SourceThreadId": (_to_int, "process.thread.id"),
        "RuleName": "rule.name",
    }
)
_SYSMON_BY_EVENT: dict[str, dict[str, Rule | None]] = {
    # Process creation: hashes and version information are the new process's, not a file's.
    "1": _compile(
        {
            "Hashes": (_hashes, "process"),
            "OriginalFileName": "process.pe.original_file_name",
            "FileVersion": "process.pe.file_version",
            "Description": "process.pe.description",
            "Product": "process.pe.product",
            "Company": "process.pe.company",
        }
    ),
    "13": _compile({"TargetObject": (_registry_value, "registry")}),
}

_SECURITY_FIELDS = _compile(
    {
        "SubjectUserSid": "user.id",
        "SubjectUserName": "user.name",
        "SubjectDomainName": "user.domain",
        "SubjectLogonId": "winlog.logon.id",
        "TargetUserSid": "user.target.id",
        "TargetSid": "user.target.id",
        "TargetUserName": "user.target.name",
        "TargetDomainName": "user.target.domain",
        "IpAddress": (_ip, "source.ip"),
        "IpPort": (_to_int, "source.port"),
        "WorkstationName": "source.domain",
        "Workstation": "source.domain",
        "SourceAddress": (_ip, "source.ip"),
        "SourcePort": (_to_int, "source.port"),
        "DestAddress": (_ip, "destination.ip"),
        "DestPort": (_to_int, "destination.port"),
        "Direction": (_wfp_direction, "network.direction"),
        "Protocol": "network.iana_number",
        "ProcessId": (_to_int, "process.pid"),
        "ProcessID": (_to_int, "process.pid"),
        "ProcessName": "process.executable",
        "Application": "process.executable",
        "CommandLine": "process.command_line",
        "ServiceName": "service.name",
        "LogonType": (_logon_type, "winlog.logon.type"),
    }
)
# Logon events: the user is the account that logs on (Target*), not the service reporting it (Subject*).
_LOGON_USER = _compile(
    {
        "SubjectUserSid": None,
        "SubjectUserName": None,
        "SubjectDomainName": None,
        "SubjectLogonId": None,
        "TargetUserSid": "user.id",
        "TargetSid": "user.id",
        "TargetUserName": "user.name",
        "TargetDomainName": "user.domain",
        "TargetLogonId": "winlog.logon.id",
    }
)
_LOGON_EVENTS: Final = ("4624", "4625", "4634", "4647", "4768", "4769", "4770", "4771", "4772", "4776")
# Group management: Target* is the group, Member* the account added or removed.
_GROUP_CHANGE = _compile(
    {
        "TargetUserName": "group.name",
        "TargetDomainName": "group.domain",
        "TargetSid": "group.id",
        "MemberSid": "user.target.id",
        "MemberName": "user.target.name",
    }
)
_GROUP_EVENTS: Final = (
    *(str(i) for i in range(4727, 4738) if i != 4736),
    *(str(i) for i in range(4744, 4765)),
    "4799",
)
_SECURITY_BY_EVENT: dict[str, dict[str, Rule | None]] = {
    **dict.fromkeys(_LOGON_EVENTS, _LOGON_USER),
    **dict.fromkeys(_GROUP_EVENTS, _GROUP_CHANGE),
    # Process creation: ProcessId is the creator's; Target* is the account the new process runs as.
    "4688": _compile(
        {
            "NewProcessId": (_to_int, "process.pid"),
            "NewProcessName": "process.executable",
            "ProcessId": (_to_int, "process.parent.pid"),
            "ParentProcessName": "process.parent.executable",
            "TargetUserSid": "user.effective.id",
            "TargetUserName": "user.effective.name",
            "TargetDomainName": "user.effective.domain",
        }
    ),
    # Session reconnected / disconnected.
    **dict.fromkeys(
        ("4778", "4779"),
        _compile(
            {
                "AccountName": "user.name",
                "AccountDomain": "user.domain",
                "ClientAddress": (_ip, "source.ip"),
                "ClientName": "source.domain",
            }
        ),
    ),
}

_POWERSHELL_FIELDS = _compile(
    {
        "ScriptBlockText": "powershell.file.script_block_text",
        "ScriptBlockId": "powershell.file.script_block_id",
        "Path": "file.path",
        "MessageNumber": (_to_int, "powershell.sequence"),
        "MessageTotal": (_to_int, "powershell.total"),
        "ContextInfo": (_powershell_context, "powershell"),
        "Payload": "powershell.file.script_block_text",  # 4103, as ecs_windows maps it
    }
)
# Classic PowerShell events have unnamed Data; one of them is the Key=Value block about the host.
_POWERSHELL_CLASSIC_BY_EVENT: dict[str, dict[str, Rule | None]] = {
    **dict.fromkeys(("400", "403", "600"), _compile({"param3": (_powershell_context, "powershell")})),
    "800": _compile({"param2": (_powershell_context, "powershell")}),
}
# name -> (rule, the field it writes): the first line naming a field wins.
# Keys of PowerShell's Key=Value block (spaces removed, lower case) and their ECS fields.
_POWERSHELL_CONTEXT_TARGETS: Final[dict[str, Target]] = {
    "hostapplication": "process.command_line",
    "hostname": "process.title",
    "hostid": "process.entity_id",
    "hostversion": "powershell.process.executable_version",
    "engineversion": "powershell.engine.version",
    "runspaceid": "powershell.runspace_id",
    "pipelineid": "powershell.pipeline_id",
    "sequencenumber": (_to_int, "event.sequence"),
    "commandname": "powershell.command.name",
    "commandpath": "powershell.command.path",
    "commandtype": "powershell.command.type",
    "commandline": "powershell.command.value",
    "scriptname": "file.path",
    "newenginestate": "powershell.engine.new_state",
    "previousenginestate": "powershell.engine.previous_state",
    "newproviderstate": "powershell.provider.new_state",
    "providername": "powershell.provider.name",
    "userid": (_domain_user, "user"),
    "user": (_domain_user, "user"),
}
# name -> (rule, the field it writes): the first line naming a field wins.
_POWERSHELL_CONTEXT: Final = {
    name: (_target_rule(target), target if isinstance(target, str) else target[1])
    for name, target in _POWERSHELL_CONTEXT_TARGETS.items()
}

_SERVICE_CONTROL_FIELDS = _compile({"ServiceName": "service.name"})

_PROVIDERS: Final[dict[str, tuple[dict[str, Rule | None], dict[str, Any]]]] = {
    SYSMON: (_SYSMON_FIELDS, _SYSMON_BY_EVENT),
    SECURITY_AUDITING: (_SECURITY_FIELDS, _SECURITY_BY_EVENT),
    EVENTLOG: (_SECURITY_FIELDS, {}),  # 1102 and 104 (log cleared) name the user with Subject*
    POWERSHELL: (_POWERSHELL_FIELDS, {}),
    POWERSHELL_CLASSIC: ({}, _POWERSHELL_CLASSIC_BY_EVENT),
    SERVICE_CONTROL_MANAGER: (_SERVICE_CONTROL_FIELDS, {}),
}


@lru_cache(maxsize=1024)
def _table(provider: str, event_id: str) -> Table:
    """The field table of one kind of event: the provider's, with its event's exceptions applied."""
    fields, by_event = _PROVIDERS.get(provider, ({}, {}))
    merged = {**fields, **by_event.get(event_id, {})}
    return {name: rule for name, rule in merged.items() if rule is not None}


_CATEGORIES: Final[dict[tuple[str, str], tuple[list[str], list[str]]]] = {
    (SYSMON, "1"): (["process"], ["start"]),
    (SYSMON, "2"): (["file"], ["change"]),
    (SYSMON, "3"): (["network"], ["connection", "start"]),
    (SYSMON, "5"): (["process"], ["end"]),
    (SYSMON, "6"): (["driver"], ["start"]),
    (SYSMON, "7"): (["library"], ["start"]),
    (SYSMON, "10"): (["process"], ["access"]),
    (SYSMON, "11"): (["file"], ["creation"]),
    (SYSMON, "13"): (["registry"], ["change"]),
    (SYSMON, "14"): (["registry"], ["change"]),
    (SYSMON, "15"): (["file"], ["creation"]),
    (SYSMON, "22"): (["network"], ["protocol"]),
    (SYSMON, "23"): (["file"], ["deletion"]),
    (SYSMON, "26"): (["file"], ["deletion"]),
    **dict.fromkeys(((SECURITY_AUDITING, i) for i in ("4624", "4625", "4648")), (["authentication"], ["start"])),
    **dict.fromkeys(
        ((SECURITY_AUDITING, i) for i in ("4768", "4769", "4771", "4776")), (["authentication"], ["start"])
    ),
    **dict.fromkeys(((SECURITY_AUDITING, i) for i in ("4634", "4647")), (["authentication"], ["end"])),
    (SECURITY_AUDITING, "4672"): (["iam"], ["admin"]),
    (SECURITY_AUDITING, "4688"): (["process"], ["start"]),
    (SECURITY_AUDITING, "4689"): (["process"], ["end"]),
    (SECURITY_AUDITING, "4698"): (["configuration"], ["creation"]),
    (SECURITY_AUDITING, "4699"): (["configuration"], ["deletion"]),
    (SECURITY_AUDITING, "4702"): (["configuration"], ["change"]),
    (SECURITY_AUDITING, "4720"): (["iam"], ["user", "creation"]),
    **dict.fromkeys(
        ((SECURITY_AUDITING, i) for i in ("4722", "4723", "4724", "4725", "4738", "4740", "4767", "4781")),
        (["iam"], ["user", "change"]),
    ),
    (SECURITY_AUDITING, "4726"): (["iam"], ["user", "deletion"]),
    **dict.fromkeys(((SECURITY_AUDITING, i) for i in ("4727", "4731", "4754")), (["iam"], ["group", "creation"])),
    **dict.fromkeys(
        ((SECURITY_AUDITING, i) for i in ("4728", "4729", "4732", "4733", "4735", "4737", "4756", "4757")),
        (["iam"], ["group", "change"]),
    ),
    **dict.fromkeys(((SECURITY_AUDITING, i) for i in ("4730", "4734", "4758")), (["iam"], ["group", "deletion"])),
    (SECURITY_AUDITING, "5156"): (["network"], ["connection", "allowed"]),
    (SECURITY_AUDITING, "5157"): (["network"], ["connection", "denied"]),
}
_REGISTRY_EVENT_TYPES: Final = {"CreateKey": "creation", "DeleteKey": "deletion", "DeleteValue": "deletion"}


def map_event_data(event: Event, provider: str, event_id: str, event_data: Mapping[str, EventDataValue]) -> None:
    """Set the ECS fields ``event_data`` implies for this provider and event id (both inputs use this)."""
    table = _table(provider, event_id)
    if table:
        for name, value in event_data.items():
            rule = table.get(name)
            if rule is not None:
                rule(event, value)
    category = _CATEGORIES.get((provider, event_id))
    if provider == SYSMON and event_id == "12":
        event_type = event_data.get("EventType")
        category = (
            ["registry"],
            [_REGISTRY_EVENT_TYPES.get(event_type, "change") if isinstance(event_type, str) else "change"],
        )
    if category is not None:
        ecs_event = event.setdefault("event", {})
        ecs_event["category"], ecs_event["type"] = list(category[0]), list(category[1])
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
