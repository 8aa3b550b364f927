"""The auditd record parser: one line of /var/log/audit/audit.log to an ECS event.

:func:`parse_auditd` reads a record (``type=... msg=audit(seconds.ms:serial): key=value ...``);
:func:`apply_record` adds one to an event that already exists, which is how
:mod:`~secmon.collect.transforms.enrich_programs` reads the records that come through syslog
(audispd, the kernel). Every ``key=value`` is kept under ``auditd.log``; the ones ECS has a name
for (process, user, source, outcome) are set too. A SYSCALL record and the EXECVE record of the
same command are joined later, by :class:`~secmon.collect.transforms.join_audit_exec.ExecJoin`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from secmon.collect.transforms.ecs_fields import merge_fields, set_peer
from secmon.collect.transforms.parse_syslog import is_ip, set_address, to_int
from secmon.events import Event, mark_parse_failure
from secmon.timestamps import epoch_to_iso, utc_iso

AUDITD_DATASET = "auditd"

# node=, type=, audit(seconds.fraction:serial), then the body of key=value pairs.
AUDIT_RECORD = re.compile(
    r"(?:node=(\S+) )?type=(\S+) (?:msg=)?audit\((\d{1,12})\.(\d{1,9}):(\d{1,19})\):\s?(.*)$", re.DOTALL
)
# EXECVE splits a long argument into a1_len=... a1[0]=... a1[1]=...: the index is part of the key.
_AUDIT_FIELD = re.compile(r"""([A-Za-z0-9_-]{1,64}(?:\[\d{1,6}\])?)=(?:"([^"]*)"|'([^']*)'|(\S*))""")
_EXECVE_ARGUMENTS = 10_000  # argc beyond this is not a real command line: the first ones are kept
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
# Fields auditd hex-encodes (unquoted) when they hold a space, a quote or a control character.
_AUDIT_ENCODED = frozenset(("exe", "comm", "cwd", "name", "proctitle", "path", "cmd", "acct", "data"))
_AUDIT_UNSET = frozenset(("?", "(none)", "(null)", "unset", "4294967295", "-1", ""))
# The kernel logs audit records by number; the names of the ones seen most.
_AUDIT_TYPE_NAMES = {
    "1006": "LOGIN",
    "1100": "USER_AUTH",
    "1101": "USER_ACCT",
    "1105": "USER_START",
    "1106": "USER_END",
    "1107": "USER_AVC",
    "1112": "USER_LOGIN",
    "1130": "SERVICE_START",
    "1131": "SERVICE_STOP",
    "1300": "SYSCALL",
    "1302": "PATH",
    "1307": "CWD",
    "1309": "EXECVE",
    "1325": "NETFILTER_CFG",
    "1326": "SECCOMP",
    "1327": "PROCTITLE",
    "1400": "AVC",
}
_AUDIT_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "USER_AUTH": (["authentication"], ["info"]),
    "USER_LOGIN": (["authentication"], ["start"]),
    "USER_LOGOUT": (["authentication"], ["end"]),
    "USER_ERR": (["authentication"], ["info"]),
    "ANOM_LOGIN_FAILURES": (["authentication"], ["info"]),
    "USER_START": (["session"], ["start"]),
    "USER_END": (["session"], ["end"]),
    "LOGIN": (["session"], ["start"]),
    "EXECVE": (["process"], ["start"]),
    "SYSCALL": (["process"], ["info"]),
    "SERVICE_START": (["process"], ["start"]),
    "SERVICE_STOP": (["process"], ["end"]),
    "ADD_USER": (["iam"], ["user", "creation"]),
    "DEL_USER": (["iam"], ["user", "deletion"]),
    "ADD_GROUP": (["iam"], ["group", "creation"]),
    "DEL_GROUP": (["iam"], ["group", "deletion"]),
    "USER_CHAUTHTOK": (["iam"], ["user", "change"]),
    "AVC": (["intrusion_detection"], ["denied"]),
    "USER_AVC": (["intrusion_detection"], ["denied"]),
}
_AUDIT_OUTCOMES = {"yes": "success", "success": "success", "no": "failure", "failed": "failure", "fail": "failure"}


def parse_auditd(line: str, *, received: float | None = None) -> Event:
    """Parse one line of /var/log/audit/audit.log (``type=... msg=audit(...): key=value ...``)."""
    event: Event = {"message": line.strip(), "event": {"original": line, "dataset": AUDITD_DATASET}}
    record = AUDIT_RECORD.match(line)
    if record is None:
        mark_parse_failure(event, "not an auditd record: no 'type=... msg=audit(seconds.ms:serial):' at its start")
    else:
        apply_record(event, record)
    if "@timestamp" not in event:
        event["@timestamp"] = epoch_to_iso(received)
    return event


def apply_record(event: Event, record: re.Match[str]) -> None:
    """Add the record :data:`AUDIT_RECORD` matched to ``event``: its time and process fields win over the event's."""
    node, record_type, seconds, fraction, sequence, body = record.groups()
    record_type = _AUDIT_TYPE_NAMES.get(record_type, record_type)
    meta = event["event"]
    meta["dataset"] = AUDITD_DATASET
    meta["action"] = record_type.lower()
    meta["sequence"] = int(sequence)
    fields = _audit_fields(body, execve=record_type == "EXECVE")
    log: dict[str, Any] = {"record_type": record_type, "sequence": int(sequence), **fields}
    if node is not None:
        log["node"] = node
        host = event.setdefault("host", {})  # the audited machine, unless a syslog header named it
        host.setdefault("hostname", node)
    event["auditd"] = {"log": log}
    if record_type == "EXECVE":
        _execve(event, fields)
    try:
        moment = datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(fraction[:6].ljust(6, "0")))
    except (OverflowError, OSError, ValueError):
        mark_parse_failure(event, f"audit timestamp {seconds}.{fraction} is out of range")
    else:
        event["@timestamp"] = utc_iso(moment)

    categories = _AUDIT_CATEGORIES.get(record_type)
    if categories is not None:
        meta["category"], meta["type"] = list(categories[0]), list(categories[1])
    outcome = _AUDIT_OUTCOMES.get(fields.get("success") or fields.get("res") or "")
    if outcome is not None:
        meta["outcome"] = outcome
    # The audited process, not the one that logged the record (the kernel, auditd): it replaces it.
    process: dict[str, Any] = event.get("process") or {}
    if (pid := _audit_value(fields, "pid")) is not None and (number := to_int(pid)) is not None:
        process["pid"] = number
    if (ppid := _audit_value(fields, "ppid")) is not None and (number := to_int(ppid)) is not None:
        process["parent"] = {"pid": number}
    for key, ecs in (("exe", "executable"), ("comm", "name"), ("cwd", "working_directory"), ("proctitle", "title")):
        if (value := _audit_value(fields, key)) is not None:
            process[ecs] = value
    if process:
        event["process"] = process
    user: dict[str, Any] = {}
    if (uid := _audit_value(fields, "uid")) is not None:
        user["id"] = uid
    if (euid := _audit_value(fields, "euid")) is not None:
        user["effective"] = {"id": euid}
    if (account := _audit_value(fields, "acct")) is not None:
        user["name"] = account
    elif (name := _audit_value(fields, "UID")) is not None:  # log_format=ENRICHED names the uid
        user["name"] = name
    if user:
        merge_fields(event, "user", user)
    if (address := _audit_value(fields, "addr")) is not None and is_ip(address):
        set_peer(event, "source", address)
    elif (hostname := _audit_value(fields, "hostname")) is not None:
        set_address(event, "source", hostname)


def _execve(event: Event, fields: dict[str, str]) -> None:
    """An EXECVE record's arguments as ECS ``process.args`` and ``process.command_line``.

    The executable, pids and user are in the SYSCALL record of the same audit event: the
    pipeline's :class:`~secmon.collect.transforms.join_audit_exec.ExecJoin` adds them.
    """
    count = to_int(fields.get("argc", ""), 5)
    if count is None:
        return
    args: list[str] = []
    for index in range(min(count, _EXECVE_ARGUMENTS)):
        value = fields.get(f"a{index}")
        if value is None:  # a long argument, in pieces a<i>[0], a<i>[1] ...
            pieces: list[str] = []
            while (piece := fields.get(f"a{index}[{len(pieces)}]")) is not None:
                pieces.append(piece)
            if not pieces:
                break  # the record was cut: keep the arguments before
            value = "".join(pieces)
        args.append(value)
    if not args:
        return
    process = event.setdefault("process", {})
    process["args"] = args
    process["args_count"] = count
    process["command_line"] = " ".join(args)
    if args[0].startswith("/"):
        process.setdefault("executable", args[0])
    process.setdefault("name", args[0].rpartition("/")[2])


def _audit_fields(body: str, *, execve: bool = False) -> dict[str, str]:
    """``key=value`` pairs of an audit record, the ones inside ``msg='...'`` included.

    ``execve``: an EXECVE record, whose arguments (``a0``, ``a1[2]``) are hex-encoded like the
    names in :data:`_AUDIT_ENCODED` (in other records ``a0``... are syscall arguments in hex).
    """
    fields: dict[str, str] = {}
    for key, double_quoted, single_quoted, bare in _AUDIT_FIELD.findall(body):
        if key == "msg" and single_quoted:  # user-space records nest their own pairs
            for inner_key, inner_value in _audit_fields(single_quoted).items():
                fields.setdefault(inner_key, inner_value)
            continue
        encoded = key in _AUDIT_ENCODED or (execve and key[:1] == "a" and key[1:2].isdigit())
        if double_quoted or single_quoted:
            value = double_quoted or single_quoted
        elif encoded and len(bare) > 1 and _HEX.fullmatch(bare) is not None:
            value = bytes.fromhex(bare).decode("utf-8", "backslashreplace")
            if key == "proctitle":
                value = value.replace("\x00", " ")
        else:
            value = bare
        fields.setdefault(key, value)
    return fields


def _audit_value(fields: dict[str, str], key: str) -> str | None:
    """The field, unless auditd says it is unknown or unset ("?", "(none)", auid 4294967295...)."""
    value = fields.get(key)
    return None if value is None or value in _AUDIT_UNSET else value
