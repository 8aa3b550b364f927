"""The event around a record: ``winlog.*`` from the System element or Winlogbeat's document, then ECS."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

from secmon.collect.transforms.normalize_winlog.ecs import map_event_data
from secmon.collect.transforms.normalize_winlog.event_data import (
    EventData,
    add_value,
    evtx_event_data,
    plain,
    set_event_data,
    user_data,
)
from secmon.collect.transforms.normalize_winlog.values import (
    as_string,
    attributes,
    braced,
    compact_json,
    iso_utc,
    now,
    put,
    scalar_text,
    to_int,
)
from secmon.events import Event, get_field, mark_parse_failure

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


# ---------------------------------------------------------------------------------------------
# The two entry points


def normalize_evtx(event: dict[str, Any], *, path: str | None = None, created: str | None = None) -> Event:
    """An ECS event from an evtx ``Event`` object; ``created`` (ISO time read) defaults to now."""
    original = compact_json({"Event": event})
    if not isinstance(event, dict):
        return _unusable(original, "the record is not an object", path)
    system = event.get("System")
    if not isinstance(system, dict):
        return _unusable(original, "the record has no System element", path)

    provider = attributes(system.get("Provider"))
    correlation = attributes(system.get("Correlation"))
    fields = {
        "channel": scalar_text(system.get("Channel")),
        "provider_name": scalar_text(provider.get("Name")),
        "provider_guid": scalar_text(braced(provider.get("Guid"))),
        "event_id": _event_id(system.get("EventID")),
        "record_id": to_int(system.get("EventRecordID")),
        "computer_name": scalar_text(system.get("Computer")),
        "process": _process(attributes(system.get("Execution")), "ProcessID", "ThreadID"),
        "user": _without_nulls({"identifier": scalar_text(attributes(system.get("Security")).get("UserID"))}) or None,
        "keywords": scalar_text(system.get("Keywords")),
        "opcode": scalar_text(system.get("Opcode")),
        "task": scalar_text(system.get("Task")),
        "version": to_int(system.get("Version")),
        "activity_id": scalar_text(correlation.get("ActivityID")),
        "related_activity_id": scalar_text(correlation.get("RelatedActivityID")),
    }
    winlog = _without_nulls(fields)
    set_event_data(winlog, evtx_event_data(event.get("EventData")), user_data(event.get("UserData")))
    processing_error = event.get("ProcessingErrorData")
    if isinstance(processing_error, dict):  # Windows could not render the event data with its template
        winlog["processing_error_data"] = plain(processing_error)

    level = system.get("Level")
    timestamp = attributes(system.get("TimeCreated")).get("SystemTime")
    result = _assemble(winlog, iso_utc(timestamp), _LEVELS.get(level) if isinstance(level, int) else None)
    result["event"]["created"] = created or now()
    result["event"]["original"] = original
    if path is not None:
        result["log"] = {**result.get("log", {}), "file": {"path": path}}
    return result


def normalize_winlogbeat(doc: dict[str, Any], *, created: str | None = None) -> Event:
    """An ECS event from a document as Winlogbeat ships it, in the same shape as :func:`normalize_evtx`."""
    if not isinstance(doc, dict):
        return _unusable(compact_json(doc), "the document is not an object", None)
    shipped = doc.get("event")
    shipped_event: dict[str, Any] = shipped if isinstance(shipped, dict) else {}
    original = shipped_event.get("original")
    if not isinstance(original, str):
        original = compact_json(doc)
    source = doc.get("winlog")
    if not isinstance(source, dict):
        return _unusable(original, "the document has no winlog object", None)

    # Start from what Winlogbeat rendered (task and opcode names, resolved user names, its API)
    # and replace everything this package derives, so nothing stale from a Winlogbeat module stays.
    winlog = {key: value for key, value in source.items() if key not in ("event_data", "user_data", "logon")}
    for key in ("channel", "provider_name", "computer_name", "opcode", "task", "activity_id", "related_activity_id"):
        winlog.pop(key, None)
        _put_text(winlog, key, source.get(key))
    winlog.pop("provider_guid", None)
    _put_text(winlog, "provider_guid", braced(source.get("provider_guid")))
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
            add_value(event_data, str(name), value)
    set_event_data(winlog, event_data, user_data(source.get("user_data"), named=True))

    level = get_field(doc, "log.level")
    result = _assemble(winlog, iso_utc(doc.get("@timestamp")), level if isinstance(level, str) else None)
    event = result["event"]
    shipped_created = shipped_event.get("created")
    event["created"] = shipped_created if isinstance(shipped_created, str) else created or now()
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
    result: Event = {"event": {"kind": "event", "module": "windows", "original": original, "created": now()}}
    if path is not None:
        result["log"] = {"file": {"path": path}}
    return mark_parse_failure(result, reason)


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
# The System element's values, and Winlogbeat's


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


def _without_nulls(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _process(process_attributes: dict[str, Any], pid_key: str, thread_key: str) -> dict[str, Any] | None:
    """winlog.process from the ids of the process and thread that logged the event."""
    process: dict[str, Any] = {}
    if (pid := to_int(process_attributes.get(pid_key))) is not None:
        process["pid"] = pid
    if (thread_id := to_int(process_attributes.get(thread_key))) is not None:
        process["thread"] = {"id": thread_id}
    return process or None


def _put_text(target: dict[str, Any], dotted: str, value: Any) -> None:
    if isinstance(value, list):  # Winlogbeat renders keywords as a list of names
        strings = [text for item in value if (text := as_string(item)) is not None]
        if strings:
            put(target, tuple(dotted.split(".")), strings)
        return
    text = None if isinstance(value, dict) else as_string(value)
    if text is not None:
        put(target, tuple(dotted.split(".")), text)


def _put_int(target: dict[str, Any], dotted: str, value: Any) -> None:
    number = to_int(value)
    if number is not None:
        put(target, tuple(dotted.split(".")), number)


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
    mask = to_int(keywords) if keywords[:2].lower() == "0x" else None
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
