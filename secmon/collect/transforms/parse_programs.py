"""Program-specific enrichment of parsed syslog events, and the auditd record parser.

:func:`enrich` looks at ``process.name`` and ``message`` of an event from
:func:`~secmon.collect.transforms.parse_syslog.parse_syslog` and adds what the program's own message
format says: who logged in from where (sshd, PAM, login, su, sudo), which command ran (sudo,
CRON), which packet a firewall rule logged (iptables, ufw, nftables through the kernel log), or a
whole audit record (auditd, also standalone through :func:`parse_auditd`).

Authentication programs get ``event.dataset = "system.auth"``, as Elastic's system module names
them, even for a message that matches none of their patterns (which gets nothing else). To cover
another program, write ``_program(event, message)`` and add it to ``_PROGRAMS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from secmon.collect.transforms.parse_syslog import (
    epoch_to_iso,
    is_ip,
    set_address,
    to_int,
    to_port,
    utc_iso,
)
from secmon.events import Event, mark_parse_failure

AUTH_DATASET = "system.auth"
AUDITD_DATASET = "auditd"
FIREWALL_DATASET = "iptables"

_KERNEL_TIME = re.compile(r"\[\s*\d+\.\d+\]\s*")
_REPEATED = re.compile(r"message repeated \d+ times: \[\s*(.*)\]$", re.DOTALL)

# -- sshd --------------------------------------------------------------------------------------

_SSH_LOGIN = re.compile(
    r"(Accepted|Failed) (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)(?: ssh\d?)?(?:: (.*))?$", re.DOTALL
)
_SSH_INVALID_USER = re.compile(r"[Ii]nvalid user (.*?) from (\S+)(?: port (\d+))?$", re.DOTALL)
_SSH_INPUT_USERAUTH = re.compile(r"input_userauth_request: invalid user (.*?)(?: \[preauth\])?$", re.DOTALL)
_SSH_RECEIVED_DISCONNECT = re.compile(
    r"Received disconnect from (\S+?)(?: port (\d+))?:\s?(\d+): (.*?)(?: \[preauth\])?$", re.DOTALL
)
_SSH_CLOSED = re.compile(
    r"(?:Disconnected from|Connection closed by|Connection reset by)"
    r"(?: (?:invalid user|authenticating user|user) (.*?))? (\S+)(?: port (\d+))?(?: \[preauth\])?$",
    re.DOTALL,
)
_SSH_TOO_MANY_FAILURES = re.compile(
    r"Disconnecting(?:: Too many authentication failures for (?:invalid user )?(.*?)"
    r"| (?:invalid user|authenticating user) (.*?) (\S+) port (\d+): Too many authentication failures)"
    r"(?: \[preauth\])?$",
    re.DOTALL,
)
_SSH_REVERSE_MAPPING = re.compile(
    r"reverse mapping checking getaddrinfo for (\S+) \[(\S+)\] failed(?: - POSSIBLE BREAK-IN ATTEMPT!)?$"
)
_SSH_MAPS_BACK = re.compile(
    r"Address (\S+) maps to (\S+), but this does not map back to the address(?: - POSSIBLE BREAK-IN ATTEMPT!)?$"
)
_SSH_NO_IDENTIFICATION = re.compile(r"Did not receive identification string from (\S+)(?: port (\d+))?$")
_SSH_CONNECTION = re.compile(r"Connection from (\S+) port (\d+) on (\S+) port (\d+)")

# -- PAM ---------------------------------------------------------------------------------------

_PAM_STARTS = ("pam_", "PAM ")  # "pam_unix(sshd:auth): ...", "PAM 2 more authentication failures; ..."
_PAM_PREFIX = re.compile(r"(pam_\w+)\(([^:()\s]+):(\w+)\): ")
_PAM_SESSION_OPENED = re.compile(
    r"session opened for user (\S+?)(?:\(uid=(\d+)\))? by (\S*?)\(uid=(\d+)\)$|session opened for user (\S+?)$"
)
_PAM_SESSION_CLOSED = re.compile(r"session closed for user (\S+?)(?:\(uid=\d+\))?$")
_PAM_AUTH_FAILURE = re.compile(r"(?:(\d+) more )?authentication failures?; (.*)$", re.DOTALL)
_PAM_FIELD = re.compile(r"(\w+)=(\S*)")
_PAM_USER_UNKNOWN = "check pass; user unknown"
_PAM_MAX_RETRIES = re.compile(r"service\(\S+\) ignoring max retries; (\d+) > (\d+)$")
# su and sudo sessions are opened by one user for another: "for root by alice(uid=1000)".
_SWITCH_USER_SERVICES = frozenset(("su", "su-l", "sudo", "sudo-i", "runuser", "runuser-l"))

# -- sudo, su, login, CRON ---------------------------------------------------------------------

_SUDO = re.compile(r"\s*(\S+) : (.*)$", re.DOTALL)
_SU_BSD = re.compile(r"'su (\S*)' (failed|succeeded) for (\S+) on (\S+)$")
_SU_TO = re.compile(r"\(to (\S+)\) (\S+) on (\S+)$")
_SU_RESULT = re.compile(r"(FAILED|Successful) su for (\S+) by (\S+)$")
_SU_SULOG = re.compile(r"([+-]) (\S+) (\S+?):(\S+)$")
_LOGIN_ROOT = re.compile(r"ROOT LOGIN\s+(?:ON|on) '?([^'\s]+)'?(?: FROM '?([^'\s]+)'?)?$")
_LOGIN_USER = re.compile(r"LOGIN ON '?([^'\s]+)'? BY '?([^'\s]+)'?(?: FROM '?([^'\s]+)'?)?$")
_LOGIN_FAILED = re.compile(
    r"FAILED LOGIN \(?\d+\)? (?:ON|on) '?([^'\s]+)'?(?: FROM '?([^'\s]*)'?)? FOR '?([^',\s]+)'?, (.*)$", re.DOTALL
)
_CRON_COMMAND = re.compile(r"\((\S+)\) CMD \((.*)\)$", re.DOTALL)

# -- kernel: firewall and audit ----------------------------------------------------------------

_FIREWALL = re.compile(r"(.*?)\s*\bIN=(\S*) OUT=(\S*)(?: (.*))?$", re.DOTALL)
_FIREWALL_ACTIONS = (
    (("block", "drop", "deny", "denied", "reject"), "block", "denied"),
    (("allow", "accept", "pass"), "allow", "allowed"),
    (("audit",), "audit", None),
)

_AUDIT_RECORD = re.compile(
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


def enrich(event: Event) -> Event:
    """Add what the program that wrote a parsed syslog event says in its message; returns ``event``."""
    message = event.get("message")
    process = event.get("process")
    if not isinstance(message, str) or not isinstance(process, dict):
        return event
    name = process.get("name")
    if not isinstance(name, str):
        return event
    # "sshd(pam_unix)" (old PAM), "/usr/sbin/sshd" (some senders) and "CRON" all name the program.
    program, _, module = name.rpartition("/")[2].partition("(")
    program = program.lower()
    if module.startswith("pam_"):
        _pam(event, message, program)
        return event
    handler = _PROGRAMS.get(program)
    if handler is not None:
        handler(event, message)
    elif message.startswith(_PAM_STARTS):
        _pam(event, message, program)
    elif "audit(" in message:
        _audit_in_syslog(event, message)
    return event


def parse_auditd(line: str, *, received: float | None = None) -> Event:
    """Parse one line of /var/log/audit/audit.log (``type=... msg=audit(...): key=value ...``)."""
    event: Event = {"message": line.strip(), "event": {"original": line, "dataset": AUDITD_DATASET}}
    record = _AUDIT_RECORD.match(line)
    if record is None:
        mark_parse_failure(event, "not an auditd record: no 'type=... msg=audit(seconds.ms:serial):' at its start")
    else:
        _apply_audit(event, record)
    if "@timestamp" not in event:
        event["@timestamp"] = epoch_to_iso(received)
    return event


# -- sshd --------------------------------------------------------------------------------------


def _sshd(event: Event, message: str) -> None:
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith("error: "):
        message = message[7:]
    elif message.startswith("message repeated "):  # rsyslog's de-duplication wraps the message
        repeated = _REPEATED.match(message)
        if repeated is not None:
            message = repeated.group(1)
    space = message.find(" ")
    first = message[:space] if space >= 0 else message
    if first in ("Accepted", "Failed"):
        if (match := _SSH_LOGIN.match(message)) is not None:
            result, method, invalid, user, address, port, _ = match.groups()
            success = result == "Accepted"
            _auth(event, "ssh_login", "success" if success else "failure", user=user, address=address, port=port)
            _set(event, "system", {"auth": {"ssh": {"event": "Invalid" if invalid else result, "method": method}}})
    elif first in ("Invalid", "invalid"):
        if (match := _SSH_INVALID_USER.match(message)) is not None:
            _auth(
                event, "ssh_invalid_user", "failure", user=match.group(1), address=match.group(2), port=match.group(3)
            )
    elif first == "input_userauth_request:":
        if (match := _SSH_INPUT_USERAUTH.match(message)) is not None:
            _auth(event, "ssh_invalid_user", "failure", user=match.group(1))
    elif first == "Received":
        if (match := _SSH_RECEIVED_DISCONNECT.match(message)) is not None:
            _network(event, "ssh_disconnect", ["connection", "end"], match.group(1), match.group(2))
            event["event"]["reason"] = match.group(4)
    elif first in ("Disconnected", "Connection"):
        if (match := _SSH_CLOSED.match(message)) is not None:
            _network(event, "ssh_disconnect", ["connection", "end"], match.group(2), match.group(3))
            if user := match.group(1):
                _set(event, "user", {"name": user})
        elif (match := _SSH_CONNECTION.match(message)) is not None:
            _network(event, "ssh_connection", ["connection", "start"], match.group(1), match.group(2))
            _set_peer(event, "destination", match.group(3), match.group(4))
    elif first in ("Disconnecting:", "Disconnecting"):
        if (match := _SSH_TOO_MANY_FAILURES.match(message)) is not None:
            user, other_user, address, port = match.groups()
            _auth(
                event,
                "ssh_too_many_authentication_failures",
                "failure",
                user=user or other_user,
                address=address,
                port=port,
            )
    elif first in ("reverse", "Address"):
        if (match := _SSH_REVERSE_MAPPING.match(message)) is not None:
            _network(event, "ssh_possible_break_in", ["info"], match.group(2), None)
            event["source"]["domain"] = match.group(1)
        elif (match := _SSH_MAPS_BACK.match(message)) is not None:
            _network(event, "ssh_possible_break_in", ["info"], match.group(1), None)
            event["source"]["domain"] = match.group(2)
    elif first == "Did":
        if (match := _SSH_NO_IDENTIFICATION.match(message)) is not None:
            _network(event, "ssh_no_identification", ["connection"], match.group(1), match.group(2))
    elif message.startswith(_PAM_STARTS):
        _pam(event, message, "sshd")


# -- PAM ---------------------------------------------------------------------------------------


def _pam(event: Event, message: str, service: str) -> None:
    """A PAM module's message: ``pam_unix(sshd:auth): ...``, ``PAM 2 more ...`` or old ``sshd(pam_unix)``."""
    event["event"]["dataset"] = AUTH_DATASET
    prefix = _PAM_PREFIX.match(message)
    if prefix is not None:
        service = prefix.group(2)
        message = message[prefix.end() :]
    elif message.startswith("PAM "):
        message = message[4:]
    if message.startswith("session "):
        if (opened := _PAM_SESSION_OPENED.match(message)) is not None:
            user, _, by_name, by_uid, bare_user = opened.groups()
            _categorize(event, "pam_session_opened", ["session"], ["start"], "success")
            if bare_user is not None:
                _set(event, "user", {"name": bare_user})
            elif service in _SWITCH_USER_SERVICES:
                # "session opened for user root by alice(uid=1000)": alice acts as root.
                actor: dict[str, Any] = {"name": by_name} if by_name else {"id": by_uid}
                actor["effective"] = {"name": user}
                _set(event, "user", actor)
            else:
                _set(event, "user", {"name": user})
        elif (closed := _PAM_SESSION_CLOSED.match(message)) is not None:
            _categorize(event, "pam_session_closed", ["session"], ["end"], "success")
            _set(event, "user", {"name": closed.group(1)})
    elif (failure := _PAM_AUTH_FAILURE.match(message)) is not None:
        _categorize(event, "pam_authentication_failure", ["authentication"], ["info"], "failure")
        fields = dict(_PAM_FIELD.findall(failure.group(2)))
        if user := fields.get("user"):
            _set(event, "user", {"name": user})
        if rhost := fields.get("rhost"):
            set_address(event, "source", rhost)
    elif message == _PAM_USER_UNKNOWN:
        _categorize(event, "pam_user_unknown", ["authentication"], ["info"], "failure")
    elif _PAM_MAX_RETRIES.match(message) is not None:
        _categorize(event, "pam_max_retries", ["authentication"], ["info"], "failure")


# -- sudo, su, login, CRON ---------------------------------------------------------------------


def _sudo(event: Event, message: str) -> None:
    """``alice : [reason ; ]TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``."""
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(_PAM_STARTS):
        _pam(event, message, "sudo")
        return
    match = _SUDO.match(message)
    if match is None:
        return
    user, details = match.groups()
    # The command comes last and may hold " ; " itself, so it is split off first.
    head, found, command = details.partition(" ; COMMAND=")
    if not found:
        if not details.startswith("COMMAND="):
            return
        head, command = "", details[8:]
    reason = None
    fields: dict[str, str] = {}
    for part in head.split(" ; ") if head else ():
        key, equals, value = part.partition("=")
        if equals and key.isupper():
            fields[key] = value
        else:
            reason = part
    if "USER" not in fields:
        return
    _set(event, "user", {"name": user, "effective": {"name": fields["USER"]}})
    process = event["process"]
    process["command_line"] = command
    if pwd := fields.get("PWD"):
        process["working_directory"] = pwd
    _categorize(event, "sudo_command", ["process"], ["start"], "failure" if reason else "success")
    if reason:
        event["event"]["reason"] = reason
    sudo: dict[str, Any] = {"command": command, **{key.lower(): value for key, value in fields.items()}}
    if reason:
        sudo["error"] = reason
    _set(event, "system", {"auth": {"sudo": sudo}})


def _su(event: Event, message: str) -> None:
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(_PAM_STARTS):
        _pam(event, message, "su")
        return
    if (match := _SU_TO.match(message)) is not None:
        target, user, outcome = match.group(1), match.group(2), "success"
    elif (match := _SU_RESULT.match(message)) is not None:
        target, user = match.group(2), match.group(3)
        outcome = "success" if match.group(1) == "Successful" else "failure"
    elif (match := _SU_BSD.match(message)) is not None:
        target, user = match.group(1) or "root", match.group(3)
        outcome = "success" if match.group(2) == "succeeded" else "failure"
    elif (match := _SU_SULOG.match(message)) is not None:
        target, user = match.group(4), match.group(3)
        outcome = "success" if match.group(1) == "+" else "failure"
    else:
        return
    _categorize(event, "switch_user", ["authentication"], ["info"], outcome)
    _set(event, "user", {"name": user, "effective": {"name": target}})


def _login(event: Event, message: str) -> None:
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(_PAM_STARTS):
        _pam(event, message, "login")
        return
    address = None
    if (match := _LOGIN_ROOT.match(message)) is not None:
        user, outcome, address = "root", "success", match.group(2)
    elif (match := _LOGIN_USER.match(message)) is not None:
        user, outcome, address = match.group(2), "success", match.group(3)
    elif (match := _LOGIN_FAILED.match(message)) is not None:
        user, outcome, address = match.group(3), "failure", match.group(2)
        event["event"]["reason"] = match.group(4)
    else:
        return
    _categorize(event, "login", ["authentication"], ["start"], outcome)
    _set(event, "user", {"name": user})
    if address:
        set_address(event, "source", address)


def _cron(event: Event, message: str) -> None:
    if message.startswith(_PAM_STARTS):
        _pam(event, message, "cron")
        return
    match = _CRON_COMMAND.match(message)
    if match is not None:
        _categorize(event, "cron_command", ["process"], ["start"], None)
        _set(event, "user", {"name": match.group(1)})
        event["process"]["command_line"] = match.group(2)


# -- kernel: firewall and audit ----------------------------------------------------------------


def _kernel(event: Event, message: str) -> None:
    if message[:1] == "[":  # "[12345.678901] " when the kernel's own clock is in the line
        kernel_time = _KERNEL_TIME.match(message)
        if kernel_time is not None:
            message = message[kernel_time.end() :]
    if "IN=" in message and " OUT=" in message:
        _firewall(event, message)
    elif "audit(" in message:
        _audit_in_syslog(event, message)


def _firewall(event: Event, message: str) -> None:
    """``[UFW BLOCK] IN=eth0 OUT= MAC=... SRC=... DST=... LEN=60 ... PROTO=TCP SPT=1 DPT=22 ...``."""
    match = _FIREWALL.match(message)
    if match is None:
        return
    prefix, ingress, egress, rest = match.groups()
    event["event"]["dataset"] = FIREWALL_DATASET
    fields: dict[str, Any] = {}
    flags = []
    # ICMP errors quote the offending packet's header in [brackets]: its SRC/DST are not this packet's.
    for token in (rest or "").partition(" [")[0].split():
        key, equals, value = token.partition("=")
        if equals:
            fields[key] = value
        else:
            flags.append(token)
    event_type = ["connection"]
    action = None
    lowered = prefix.lower()
    for words, name, denied_or_allowed in _FIREWALL_ACTIONS:
        if any(word in lowered for word in words):
            action = name
            if denied_or_allowed is not None:
                event_type.append(denied_or_allowed)
            break
    meta = event["event"]
    meta["category"] = ["network"]
    meta["type"] = event_type
    if action is not None:
        meta["action"] = action
    rule_name = prefix.strip().strip("[]:").strip()
    if rule_name:
        event["rule"] = {"name": rule_name}
    observer: dict[str, Any] = {}
    if ingress:
        observer["ingress"] = {"interface": {"name": ingress}}
    if egress:
        observer["egress"] = {"interface": {"name": egress}}
    if observer:
        _set(event, "observer", observer)

    source, destination = fields.pop("SRC", None), fields.pop("DST", None)
    if source:
        _set_peer(event, "source", source, fields.pop("SPT", None))
    if destination:
        _set_peer(event, "destination", destination, fields.pop("DPT", None))
    network: dict[str, Any] = {}
    if protocol := fields.pop("PROTO", None):
        network["transport"] = protocol.lower()
    if source:
        network["type"] = "ipv6" if ":" in source else "ipv4"
    if network:
        _set(event, "network", network)
    mac = fields.pop("MAC", "").split(":")
    if len(mac) == 14:  # destination (6 octets), source (6), EtherType (2)
        _set(event, "destination", {"mac": "-".join(mac[:6]).upper()})
        _set(event, "source", {"mac": "-".join(mac[6:12]).upper()})
    if protocol in ("ICMP", "ICMPv6"):
        icmp = {
            key.lower(): number for key in ("TYPE", "CODE") if (number := to_int(fields.pop(key, ""), 3)) is not None
        }
        if icmp:
            event["icmp"] = icmp
    extra: dict[str, Any] = {key.lower(): value for key, value in fields.items()}
    if flags:
        extra["flags"] = flags
    if extra:
        event["iptables"] = extra


def _audit_in_syslog(event: Event, message: str) -> None:
    # Searched, not matched: the kernel writes "audit: type=1400 audit(...)", audisp "node=h type=...".
    record = _AUDIT_RECORD.search(message)
    if record is not None:
        _apply_audit(event, record)


def _apply_audit(event: Event, record: re.Match[str]) -> None:
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
        _set(event, "user", user)
    if (address := _audit_value(fields, "addr")) is not None and is_ip(address):
        _set_peer(event, "source", address)
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


# -- shared ------------------------------------------------------------------------------------


def _set(event: Event, key: str, value: dict[str, Any]) -> None:
    """Merge ``value`` into ``event[key]``, which may hold fields already."""
    existing = event.get(key)
    if isinstance(existing, dict):
        for name, child in value.items():
            if isinstance(child, dict) and isinstance(existing.get(name), dict):
                existing[name].update(child)
            else:
                existing[name] = child
    else:
        event[key] = value


def _categorize(event: Event, action: str, category: list[str], types: list[str], outcome: str | None) -> None:
    meta = event["event"]
    meta["action"] = action
    meta["category"] = category
    meta["type"] = types
    if outcome is not None:
        meta["outcome"] = outcome


def _set_peer(event: Event, side: str, address: str, port: str | None = None) -> None:
    """An address that should be an IP (sshd's, a firewall's): anything else stays only in ``<side>.address``."""
    peer: dict[str, Any] = {"address": address}
    if is_ip(address):
        peer["ip"] = address
        if port is not None and (number := to_port(port)) is not None:
            peer["port"] = number
    _set(event, side, peer)


def _auth(
    event: Event, action: str, outcome: str, *, user: str | None, address: str | None = None, port: str | None = None
) -> None:
    _categorize(event, action, ["authentication"], ["info"], outcome)
    if user:
        _set(event, "user", {"name": user})
    if address is not None:
        _set_peer(event, "source", address, port)


def _network(event: Event, action: str, types: list[str], address: str, port: str | None) -> None:
    _categorize(event, action, ["network"], types, None)
    _set_peer(event, "source", address, port)


_PROGRAMS: dict[str, Callable[[Event, str], None]] = {
    "sshd": _sshd,
    "sshd-session": _sshd,  # OpenSSH 9.8 and later log from a per-connection binary
    "sshd-auth": _sshd,
    "sudo": _sudo,
    "su": _su,
    "login": _login,
    "cron": _cron,
    "crond": _cron,
    "kernel": _kernel,
    "audit": _audit_in_syslog,
    "auditd": _audit_in_syslog,
    "audispd": _audit_in_syslog,
    "audisp-syslog": _audit_in_syslog,
}
