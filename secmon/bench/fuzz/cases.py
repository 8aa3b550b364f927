"""Valid inputs made from fields, each with the fields its parse must give back.

Every generator returns a :class:`Case` (or a case class of its own): the input as a source
would receive it, and ``expected``, dotted field names with the value the parsed event must hold
(:data:`ABSENT`: the field must not be there). The expected values are worked out here from the
fields drawn, never by secmon's own code, so a round trip checks the parser against the format.

Generators take their choices from a :class:`~.draw.Draw`: a seeded random one in ``secmon bench
fuzz``, Hypothesis in the tests.
"""

from __future__ import annotations

import ipaddress
import json
import string
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from secmon.bench.fuzz.draw import Draw

Data = TypeVar("Data", str, bytes)

# When the fuzzed records were "received": a year-less RFC 3164 date takes its year from it.
RECEIVED = datetime(2024, 6, 15, 12, 0, tzinfo=UTC).timestamp()


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""An expected value meaning: the parsed event has no such field."""


@dataclass(frozen=True, slots=True)
class Case(Generic[Data]):
    """One input and, when it is valid, what parsing it must give back."""

    data: Data
    expected: Mapping[str, Any] = field(default_factory=dict)
    received: float = RECEIVED


# -- characters --------------------------------------------------------------------------------

PRINTUSASCII = "".join(chr(c) for c in range(33, 127))  # RFC 5424's header characters
SD_NAME = "".join(c for c in PRINTUSASCII if c not in '= ]"')
WORD = string.ascii_letters + string.digits + "._-"
# Message text: ASCII, the characters parsers split on, and UTF-8 of one to four bytes.
TEXT = string.ascii_letters + string.digits + " .,;:!?'()[]{}<>=/+-_#%&@|~^$\"\\\té中ü€😀\u200b"
_UNSTRIPPED = "".join(c for c in TEXT if not c.isspace() and c != "\u200b")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Programs whose messages enrich_programs reads: a generated syslog tag never takes their names,
# so that a syslog round trip sees only what the syslog header says.
PROGRAMS = frozenset(
    {"sshd", "sshd-session", "sshd-auth", "sudo", "su", "login", "cron", "crond", "kernel"}
    | {"audit", "auditd", "audispd", "audisp-syslog"}
)


def message_text(d: Draw, longest: int = 120) -> str:
    """Free text that does not start or end with white space (parsers strip it, as they should)."""
    if d.chance(0.1):
        return d.choice(_UNSTRIPPED)
    return d.choice(_UNSTRIPPED) + d.text(TEXT, 0, longest) + d.choice(_UNSTRIPPED)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC as secmon writes @timestamp: milliseconds or microseconds only when there are any."""
    moment = moment.astimezone(UTC)
    whole = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond == 0:
        return whole + "Z"
    if moment.microsecond % 1000 == 0:
        return f"{whole}.{moment.microsecond // 1000:03d}Z"
    return f"{whole}.{moment.microsecond:06d}Z"


def moment_between(d: Draw, start: datetime, end: datetime) -> datetime:
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=d.integer(0, seconds))


def ipv4(d: Draw) -> str:
    return str(ipaddress.IPv4Address(d.bits(32)))


def ipv6(d: Draw) -> str:
    return str(ipaddress.IPv6Address(d.bits(128)))


def ip(d: Draw) -> str:
    return ipv4(d) if d.chance(0.7) else ipv6(d)


def program_tag(d: Draw) -> str:
    tag = d.text(WORD, 1, 32)
    return tag + "0" if tag.lower() in PROGRAMS else tag


# -- syslog ------------------------------------------------------------------------------------


def _rfc3339(d: Draw) -> tuple[str, str]:
    """An RFC 3339 timestamp as RFC 5424 allows it, and the @timestamp it stands for."""
    moment = moment_between(d, datetime(1971, 1, 1), datetime(2099, 12, 31))
    digits = d.integer(0, 6)
    fraction = d.text(string.digits, digits, digits)
    moment = moment.replace(microsecond=int(fraction.ljust(6, "0")) if digits else 0)
    if d.chance(0.4):
        offset, zone = timedelta(0), "Z"
    else:
        minutes = d.integer(-14 * 60, 14 * 60)
        offset = timedelta(minutes=minutes)
        zone = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    local = moment.replace(tzinfo=timezone(offset))
    written = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + zone
    return written, iso_utc(local)


def _header_field(d: Draw, longest: int, nil_chance: float = 0.2) -> str | None:
    """An RFC 5424 header field (PRINTUSASCII), or None for the NILVALUE '-'."""
    if d.chance(nil_chance):
        return None
    value = d.text(PRINTUSASCII, 1, longest)
    return "x-" if value == "-" else value


def _sd_value_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424_case(d: Draw) -> Case[str]:
    """An RFC 5424 line from priority, timestamp, host, app, procid, msgid, structured data and message."""
    priority = d.integer(0, 191)
    stamp = _rfc3339(d) if d.chance(0.9) else None
    host = _header_field(d, 255)
    app = _header_field(d, 48)
    if app is not None:
        # "x/sshd" and "sshd(pam_unix)" name programs enrich_programs reads too.
        app = app.replace("/", "_").replace("(", "_")
        app = app + "0" if app.lower() in PROGRAMS else app
    procid = None if d.chance(0.3) else d.text(string.digits, 1, 7) if d.chance(0.7) else _header_field(d, 128)
    msgid = _header_field(d, 32)
    elements: dict[str, dict[str, str]] = {}
    for _ in range(d.integer(0, 3) if d.chance(0.6) else 0):
        sd_id = d.text(SD_NAME, 1, 32) + (f"@{d.integer(1, 99999)}" if d.chance(0.5) else "")
        params = elements.setdefault(sd_id, {})
        for _ in range(d.integer(0, 3)):
            params.setdefault(d.text(SD_NAME, 1, 32), d.text(TEXT, 0, 40))
    message = message_text(d) if d.chance(0.9) else ""
    bom = "\ufeff" if message and d.chance(0.3) else ""

    structured = "".join(
        f"[{sd_id}" + "".join(f' {name}="{_sd_value_escaped(value)}"' for name, value in params.items()) + "]"
        for sd_id, params in elements.items()
    )
    fields = [stamp[0] if stamp else None, host, app, procid, msgid]
    line = f"<{priority}>1 " + " ".join(value or "-" for value in fields) + f" {structured or '-'}"
    if message or d.chance(0.5):
        line += f" {bom}{message}"

    expected: dict[str, Any] = {
        "log.syslog.priority": priority,
        "log.syslog.facility.code": priority >> 3,
        "log.syslog.severity.code": priority & 7,
        "log.syslog.version": "1",
        "log.syslog.hostname": host or ABSENT,
        "host.hostname": host or ABSENT,
        "log.syslog.appname": app or ABSENT,
        "process.name": app or ABSENT,
        "log.syslog.procid": procid or ABSENT,
        "process.pid": int(procid) if procid and procid.isdigit() and len(procid) <= 18 else ABSENT,
        "log.syslog.msgid": msgid or ABSENT,
        "log.syslog.structured_data": elements or ABSENT,
        "message": message,
        "tags": ABSENT,
    }
    if stamp is not None:
        expected["@timestamp"] = stamp[1]
    return Case(line, expected)


def _bsd_date(moment: datetime) -> str:
    """``Mmm dd hh:mm:ss``, the day padded with a space as RFC 3164 writes it."""
    return f"{MONTH_NAMES[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S}"


def rfc3164_case(d: Draw) -> Case[str]:
    """An RFC 3164 line (or one as syslog writes it to a file) from its fields."""
    received = datetime.fromtimestamp(RECEIVED, UTC)
    moment = moment_between(d, received - timedelta(days=330), received).replace(tzinfo=None)
    if d.chance(0.8):
        stamp, iso = _bsd_date(moment), iso_utc(moment.replace(tzinfo=UTC))
    else:  # rsyslog's RFC 3339 dates, as /var/log files hold them with its default templates
        minutes = d.integer(-12, 12) * 60
        local = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        stamp, iso = local.isoformat(), iso_utc(local)
    priority = d.integer(0, 191) if d.chance(0.7) else None
    host = d.text(WORD, 1, 40) if d.chance(0.6) else ipv4(d)
    tag = program_tag(d)
    pid = d.text(string.digits, 1, 7) if d.chance(0.7) else None
    message = message_text(d) if d.chance(0.95) else ""
    line = ("" if priority is None else f"<{priority}>") + f"{stamp} {host} {tag}"
    line += (f"[{pid}]" if pid is not None else "") + f": {message}"
    expected: dict[str, Any] = {
        "@timestamp": iso,
        "log.syslog.hostname": host,
        "host.hostname": host,
        "log.syslog.appname": tag,
        "process.name": tag,
        "log.syslog.procid": pid or ABSENT,
        "process.pid": int(pid) if pid else ABSENT,
        "message": message,
        "tags": ABSENT,
    }
    if priority is not None:
        expected.update(
            {
                "log.syslog.priority": priority,
                "log.syslog.facility.code": priority >> 3,
                "log.syslog.severity.code": priority & 7,
            }
        )
    return Case(line, expected)


def _syslog_prefix(d: Draw, program: str, pid: bool = True) -> str:
    received = datetime.fromtimestamp(RECEIVED, UTC)
    moment = moment_between(d, received - timedelta(days=30), received)
    priority = f"<{d.integer(0, 191)}>" if d.chance(0.5) else ""
    process = f"{program}[{d.integer(1, 4_194_304)}]" if pid else program
    return f"{priority}{_bsd_date(moment)} {d.text(WORD, 1, 30)} {process}: "


# -- the programs enrich_programs reads --------------------------------------------------------


def sshd_case(d: Draw) -> Case[str]:
    """``Failed password for [invalid user ]X from IP port N ssh2``, as sshd logs a login."""
    accepted = d.chance(0.4)
    invalid = not accepted and d.chance(0.4)
    method = d.choice(("password", "publickey", "keyboard-interactive/pam", "none", "hostbased"))
    user = d.text(WORD + "@", 1, 32)
    address = ip(d)
    port = d.integer(0, 65535)
    program = d.choice(("sshd", "sshd", "sshd-session"))
    suffix = d.choice((" ssh2", "", " ssh2: RSA SHA256:" + d.text(string.ascii_letters + string.digits, 43, 43)))
    result = "Accepted" if accepted else "Failed"
    line = _syslog_prefix(d, program)
    line += f"{result} {method} for {'invalid user ' if invalid else ''}{user} from {address} port {port}{suffix}"
    return Case(
        line,
        {
            "event.dataset": "system.auth",
            "event.action": "ssh_login",
            "event.category": ["authentication"],
            "event.outcome": "success" if accepted else "failure",
            "user.name": user,
            "source.address": address,
            "source.ip": address,
            "source.port": port,
            "system.auth.ssh.event": "Invalid" if invalid else result,
            "system.auth.ssh.method": method,
            "process.name": program,
            "tags": ABSENT,
        },
    )


def sudo_case(d: Draw) -> Case[str]:
    """``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``, as sudo logs a command."""
    user = d.text(string.ascii_lowercase + string.digits + "._-", 1, 32)
    target = d.choice(("root", d.text(string.ascii_lowercase, 1, 16)))
    directory = "/" + d.text(WORD + "/", 0, 40)
    command = "/" + d.text(WORD + "/", 1, 30) + (" " + message_text(d, 60) if d.chance(0.7) else "")
    tty = d.choice(("pts/0", "pts/12", "tty1", "unknown"))
    line = _syslog_prefix(d, "sudo", pid=False)
    line += f"{' ' * d.integer(0, 4)}{user} : TTY={tty} ; PWD={directory} ; USER={target} ; COMMAND={command}"
    return Case(
        line,
        {
            "event.dataset": "system.auth",
            "event.action": "sudo_command",
            "event.outcome": "success",
            "user.name": user,
            "user.effective.name": target,
            "process.command_line": command,
            "process.working_directory": directory,
            "system.auth.sudo.tty": tty,
            "tags": ABSENT,
        },
    )


def cron_case(d: Draw) -> Case[str]:
    """``(root) CMD (command)``, as cron logs a job it starts."""
    user = d.text(string.ascii_lowercase + string.digits + "_-", 1, 32)
    command = message_text(d, 80)
    line = _syslog_prefix(d, d.choice(("CRON", "cron", "crond"))) + f"({user}) CMD ({command})"
    return Case(
        line,
        {"event.action": "cron_command", "user.name": user, "process.command_line": command, "tags": ABSENT},
    )


def _mac(d: Draw) -> list[str]:
    return [f"{octet:02x}" for octet in d.binary(6, 6)]


def iptables_case(d: Draw) -> Case[str]:
    """A packet a firewall rule logged through the kernel (iptables LOG, ufw, nftables)."""
    action, words = d.choice((("block", "UFW BLOCK"), ("allow", "UFW ALLOW"), ("block", "DROP"), (None, "fw")))
    ingress = d.choice(("eth0", "ens3", "wlp2s0", "br-" + d.text(string.hexdigits.lower(), 12, 12)))
    version4 = d.chance(0.8)
    source, destination = (ipv4(d), ipv4(d)) if version4 else (ipv6(d), ipv6(d))
    protocol = d.choice(("TCP", "UDP"))
    source_port, destination_port = d.integer(0, 65535), d.integer(0, 65535)
    destination_mac, source_mac = _mac(d), _mac(d)
    ethertype = ["08", "00"] if version4 else ["86", "dd"]
    clock = f"[{d.integer(0, 9_999_999)}.{d.integer(0, 999_999):06d}] " if d.chance(0.5) else ""
    line = _syslog_prefix(d, "kernel", pid=False) + f"{clock}[{words}] IN={ingress} OUT= "
    line += f"MAC={':'.join(destination_mac + source_mac + ethertype)} SRC={source} DST={destination} LEN=60 "
    line += f"TTL=64 ID={d.integer(0, 65535)} DF PROTO={protocol} SPT={source_port} DPT={destination_port}"
    line += " WINDOW=64240 RES=0x00 SYN URGP=0" if protocol == "TCP" else f" LEN={d.integer(8, 1500)}"
    return Case(
        line,
        {
            "event.dataset": "iptables",
            "event.action": action or ABSENT,
            "rule.name": words,
            "observer.ingress.interface.name": ingress,
            "source.ip": source,
            "source.port": source_port,
            "destination.ip": destination,
            "destination.port": destination_port,
            "network.transport": protocol.lower(),
            "network.type": "ipv4" if version4 else "ipv6",
            "source.mac": "-".join(source_mac).upper(),
            "destination.mac": "-".join(destination_mac).upper(),
            "tags": ABSENT,
        },
    )


def auditd_case(d: Draw) -> Case[str]:
    """A USER_LOGIN record of /var/log/audit/audit.log, as sshd's PAM session writes it."""
    seconds = d.integer(1, 4_102_444_800)
    milliseconds = d.integer(0, 999)
    serial = d.integer(1, 10**12)
    pid = d.integer(1, 4_194_304)
    # A letter first: auditd writes "-1" and "unset" for no user.
    user = d.choice(string.ascii_lowercase) + d.text(string.ascii_lowercase + string.digits + "_-", 0, 15)
    address = ip(d)
    failed = d.chance(0.5)
    node = d.text(WORD, 1, 20) if d.chance(0.3) else None
    line = (f"node={node} " if node else "") + f"type=USER_LOGIN msg=audit({seconds}.{milliseconds:03d}:{serial}): "
    line += f'pid={pid} uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg=\'op=login acct="{user}" '
    line += f'exe="/usr/sbin/sshd" hostname=? addr={address} terminal=sshd res={"failed" if failed else "success"}\''
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=milliseconds * 1000)
    return Case(
        line,
        {
            "@timestamp": iso_utc(moment),
            "event.dataset": "auditd",
            "event.action": "user_login",
            "event.sequence": serial,
            "event.category": ["authentication"],
            "event.outcome": "failure" if failed else "success",
            "process.pid": pid,
            "process.executable": "/usr/sbin/sshd",
            "user.name": user,
            "source.ip": address,
            "host.hostname": node or ABSENT,
            "tags": ABSENT,
        },
    )


# -- web servers -------------------------------------------------------------------------------

_URL_PATH = string.ascii_letters + string.digits + "/._~%-+,;@!$"
_QUOTED_TEXT = "".join(c for c in TEXT if c not in '"\\')  # Apache escapes these two; kept as sent


def apache_access_case(d: Draw) -> Case[str]:
    """An access log line in the common or combined format, from its fields."""
    client = ip(d) if d.chance(0.8) else d.text(string.ascii_lowercase + ".-", 1, 40) + ".example"
    user = d.text(WORD, 1, 20) if d.chance(0.2) else None
    user = None if user == "-" else user  # "-" is the format's "no user"
    moment = moment_between(d, datetime(1990, 1, 1), datetime(2099, 1, 1))
    minutes = d.integer(-12, 14) * 60 + d.choice((0, 0, 0, 30, 45))
    local = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    offset = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    clf = f"{local.day:02d}/{MONTH_NAMES[local.month - 1]}/{local.year}:{local:%H:%M:%S} {offset}"
    method = d.choice(("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PROPFIND"))
    path = "/" + d.text(_URL_PATH, 0, 60)
    query = d.text(string.ascii_letters + string.digits + "=&%", 0, 40) if d.chance(0.4) else None
    target = path + (f"?{query}" if query is not None else "")
    version = d.choice(("1.0", "1.1", "2.0"))
    status = d.integer(100, 599)
    size = d.integer(0, 10**9) if d.chance(0.9) else None
    combined = d.chance(0.7)
    referrer = ("http://" + d.text(string.ascii_lowercase, 1, 20) + path) if d.chance(0.6) else "-"
    agent = d.text(_QUOTED_TEXT, 1, 80)
    line = f'{client} - {user or "-"} [{clf}] "{method} {target} HTTP/{version}" {status} '
    line += "-" if size is None else str(size)
    if combined:
        line += f' "{referrer}" "{agent}"'
    is_address = any(c in client for c in ":") or client.replace(".", "").isdigit()
    expected: dict[str, Any] = {
        "event.dataset": "apache.access",
        "source.address": client,
        "source.ip" if is_address else "source.domain": client,
        "user.name": user or ABSENT,
        "@timestamp": iso_utc(local),
        "http.request.method": method,
        "url.original": target,
        "url.path": path,
        "url.query": query if query is not None else ABSENT,
        "http.version": version,
        "http.response.status_code": status,
        "http.response.body.bytes": size if size is not None else ABSENT,
        "event.outcome": "failure" if status >= 400 else "success",
        "http.request.referrer": referrer if combined and referrer != "-" else ABSENT,
        "user_agent.original": agent if combined and agent != "-" else ABSENT,
        "tags": ABSENT,
    }
    return Case(line, expected)


# -- JSON --------------------------------------------------------------------------------------

_KEY = string.ascii_lowercase + "_"
# Keys the JSON parsers give a meaning of their own: a generated document does not use them.
_RESERVED_KEYS = frozenset(("event", "@timestamp", "log", "winlog", "data_stream", "tags", "error"))


def json_value(d: Draw, depth: int = 0) -> Any:
    """A JSON value: nested objects and arrays, strings of any UTF-8, 64-bit integers, finite floats."""
    kind = d.integer(0, 7 if depth < 4 else 4)
    value: Any
    if kind == 0:
        value = None
    elif kind == 1:
        value = d.chance(0.5)
    elif kind == 2:
        value = d.integer(-(2**63), 2**63 - 1) if d.chance(0.3) else d.integer(-1000, 100_000)
    elif kind == 3:
        value = d.floating(-1e300, 1e300) if d.chance(0.2) else d.floating(-1e6, 1e6)
    elif kind == 4:
        value = d.text(TEXT + "\x00\x01\x1f\u2028\ufeff", 0, 40)
    elif kind in (5, 6):
        value = {d.text(_KEY, 1, 12): json_value(d, depth + 1) for _ in range(d.integer(0, 4))}
    else:
        value = [json_value(d, depth + 1) for _ in range(d.integer(0, 4))]
    return value


def json_document(d: Draw) -> dict[str, Any]:
    document = {d.text(_KEY, 1, 12): json_value(d, 1) for _ in range(d.integer(1, 8))}
    return {key: value for key, value in document.items() if key not in _RESERVED_KEYS} or {"message": "m"}


def encode_json(d: Draw, value: Any) -> str:
    """``value`` as one line of JSON, written the way one of several encoders would."""
    style = d.integer(0, 2)
    if style == 0:
        return json.dumps(value, ensure_ascii=True)
    if style == 1:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False, separators=(" , ", " : "))


def json_line_case(d: Draw) -> Case[str]:
    """A JSON object on one line: every field comes back as it was, and event.dataset is json."""
    document = json_document(d)
    expected: dict[str, Any] = {key: value for key, value in document.items() if "." not in key}
    expected["event.dataset"] = "json"
    expected["tags"] = ABSENT
    return Case(encode_json(d, document), expected)


def beats_case(d: Draw) -> Case[str]:
    """A document as Filebeat ships it: its ECS fields, its own event.original and dataset, kept."""
    dataset = d.choice(("system.auth", "nginx.access", "generic", d.text(_KEY, 1, 20)))
    original = message_text(d)
    document = {
        "@timestamp": iso_utc(moment_between(d, datetime(2000, 1, 1), datetime(2099, 1, 1)).replace(tzinfo=UTC)),
        "message": message_text(d),
        "event": {"dataset": dataset, "original": original},
        "log": {"file": {"path": "/" + d.text(WORD + "/", 1, 40)}, "offset": d.integer(0, 2**40)},
        "host": {"name": d.text(WORD, 1, 30)},
        "agent": {"type": "filebeat", "version": f"8.{d.integer(0, 19)}.{d.integer(0, 9)}"},
    }
    expected = {
        "@timestamp": document["@timestamp"],
        "message": document["message"],
        "event.dataset": dataset,
        "event.original": original,
        "log.file.path": document["log"]["file"]["path"],  # type: ignore[index]
        "log.offset": document["log"]["offset"],  # type: ignore[index]
        "host.name": document["host"]["name"],  # type: ignore[index]
        "agent.version": document["agent"]["version"],  # type: ignore[index]
        "tags": ABSENT,
    }
    return Case(encode_json(d, document), expected)


@dataclass(frozen=True, slots=True)
class BulkItemSpec:
    """One action of a generated ``_bulk`` body: what the body says, so what the parse must find."""

    op: str
    index: str
    id: str | None
    line: int  # of the action, from 1
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BulkCase:
    """A ``_bulk`` body of valid actions, each with its document, and the path's default index."""

    body: str
    default_index: str
    items: tuple[BulkItemSpec, ...]


def bulk_case(d: Draw, most_actions: int = 20) -> BulkCase:
    """A bulk body of 1 to ``most_actions`` index or create actions, each followed by its document."""
    default_index = d.text(string.ascii_lowercase + "-", 1, 20)
    newline = "\r\n" if d.chance(0.2) else "\n"
    lines: list[str] = []
    items = []
    for number in range(d.integer(1, most_actions)):
        if d.chance(0.1):
            lines.append("")  # a blank line between actions is skipped
        op = d.choice(("index", "create"))
        meta: dict[str, Any] = {}
        if d.chance(0.5):
            meta["_index"] = d.text(string.ascii_lowercase + "-._", 1, 30)
        if d.chance(0.6):
            meta["_id"] = f"{number}-" + d.text(string.ascii_letters + string.digits + "_-", 1, 20)
        document = json_document(d)
        lines.append(encode_json(d, {op: meta}))
        items.append(BulkItemSpec(op, meta.get("_index") or default_index, meta.get("_id"), len(lines), document))
        lines.append(encode_json(d, document))
    body = newline.join(lines) + (newline if d.chance(0.8) else "")
    return BulkCase(body, default_index, tuple(items))


# -- network frames ----------------------------------------------------------------------------

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276


@dataclass(frozen=True, slots=True)
class FrameCase:
    """A captured frame, its link type, and the packet fields decoding must give back."""

    data: bytes
    linktype: int
    expected: Mapping[str, Any]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _words(d: Draw, count: int) -> bytes:
    """``count`` 32-bit words of any bytes (header options)."""
    return d.binary(4 * count, 4 * count)


def frame_case(d: Draw) -> FrameCase:
    """An IPv4 or IPv6 packet (TCP, UDP or ICMP) in one of the link layers captures use."""
    version6 = d.chance(0.3)
    proto = d.choice((6, 6, 17, 17, 58 if version6 else 1))
    payload = d.binary(0, 300)
    sport, dport, flags, seq = d.integer(0, 65535), d.integer(0, 65535), 0, 0
    if proto == 6:
        flags, seq = d.integer(0, 0x3F), d.bits(32)
        options = _words(d, d.integer(0, 10))
        header = struct.pack(
            "!HHIIBBHHH", sport, dport, seq, d.bits(32), (5 + len(options) // 4) << 4, flags, 64240, 0, 0
        )
        transport = header + options
    elif proto == 17:
        transport = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    else:
        sport, dport = d.choice(((8, 0), (0, 0), (128, 0), (129, 0), (13, 0)))  # echo requests and replies
        transport = struct.pack("!BBHI", sport, dport, 0, d.bits(32))
    segment = transport + payload
    ttl = d.integer(1, 255)
    if version6:
        src, dst = d.binary(16, 16), d.binary(16, 16)
        extension = b""
        next_header = proto
        if d.chance(0.3):  # a hop-by-hop options header before the transport
            extension = struct.pack("!BB", proto, 0) + d.binary(6, 6)
            next_header = 0
        packet = struct.pack("!IHBB", 6 << 28, len(extension) + len(segment), next_header, ttl) + src + dst
        packet += extension + segment
        ethertype = 0x86DD
    else:
        src, dst = d.binary(4, 4), d.binary(4, 4)
        options = _words(d, d.integer(0, 10)) if d.chance(0.2) else b""
        total = 20 + len(options) + len(segment)
        fragment = 0x4000 if d.chance(0.5) else 0  # Don't Fragment; a whole datagram either way
        header = struct.pack("!BBHHHBBH", 0x40 | (5 + len(options) // 4), 0, total, d.bits(16), fragment, ttl, proto, 0)
        header = header[:10] + struct.pack("!H", _checksum(header + src + dst + options)) + header[12:]
        packet = header + src + dst + options + segment
        ethertype = 0x0800
    linktype = d.choice(
        (
            LINKTYPE_ETHERNET,
            LINKTYPE_ETHERNET,
            LINKTYPE_RAW,
            LINKTYPE_LINUX_SLL,
            LINKTYPE_LINUX_SLL2,
            LINKTYPE_NULL,
            LINKTYPE_LOOP,
        )
    )
    vlan = None
    if linktype == LINKTYPE_ETHERNET:
        tags = b""
        for tpid in (0x88A8, 0x8100)[2 - d.integer(0, 2) :] if d.chance(0.3) else ():
            vlan = d.integer(0, 4095)
            tags += struct.pack("!HH", tpid, vlan)
        # Ethernet pads short frames to 60 bytes: the padding is no part of the IP packet.
        padding = b"\x00" * max(0, 60 - 14 - len(tags) - len(packet)) if d.chance(0.5) else b""
        frame = d.binary(12, 12) + tags + struct.pack("!H", ethertype) + packet + padding
    elif linktype == LINKTYPE_RAW:
        frame = packet
    elif linktype == LINKTYPE_LINUX_SLL:
        frame = struct.pack("!HHH", 0, 1, 6) + d.binary(8, 8) + struct.pack("!H", ethertype) + packet
    elif linktype == LINKTYPE_LINUX_SLL2:
        frame = struct.pack("!HHIHBB", ethertype, 0, 2, 1, 0, 6) + d.binary(8, 8) + packet
    else:
        family = 24 if version6 else 2
        frame = struct.pack("<I" if linktype == LINKTYPE_NULL else ">I", family) + packet
    expected = {
        "src": src,
        "dst": dst,
        "proto": proto,
        "sport": sport,
        "dport": dport,
        "length": len(frame),
        "payload": transport[4:] + payload if proto in (1, 58) else payload,  # ICMP: after type, code, checksum
        "flags": flags,
        "seq": seq,
        "ttl": ttl,
        "vlan": vlan,
    }
    return FrameCase(frame, linktype, expected)


# -- Sigma rules -------------------------------------------------------------------------------

LEVELS = ("informational", "low", "medium", "high", "critical")
# Sigma reads * and ? as wildcards and \ as their escape: a plain value has none of them.
_SIGMA_VALUE = "".join(c for c in TEXT if c not in "*?\\\t") + " "


@dataclass(frozen=True, slots=True)
class SigmaCase:
    """A Sigma rule's YAML, what it is (id, title, level), and an event it matches and one it does not."""

    text: str
    rule_id: str
    title: str
    level: str
    matching: dict[str, Any]
    not_matching: dict[str, Any]


def _uuid(d: Draw) -> str:
    digits = f"{d.bits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-8{digits[17:20]}-{digits[20:]}"


def sigma_case(d: Draw) -> SigmaCase:
    """A rule on a Windows Security EventData field with a generated title, field, value and level."""
    rule_id = _uuid(d)
    title = message_text(d, 60)
    level = d.choice(LEVELS)
    field_name = "Fz" + d.text(string.ascii_letters + string.digits, 1, 20)  # never a header field's name
    value = d.choice(_UNSTRIPPED.replace("*", "").replace("?", "").replace("\\", "")) + d.text(_SIGMA_VALUE, 0, 40)
    modifier = d.choice(("", "", "|contains", "|startswith", "|endswith"))
    lines = [
        f"title: {json.dumps(title, ensure_ascii=False)}",
        f"id: {rule_id}",
        f"status: {d.choice(('test', 'experimental', 'stable'))}",
        f"level: {level}",
        "logsource:",
        "  product: windows",
        "  service: security",
        "detection:",
        "  selection:",
        f"    {field_name}{modifier}: {json.dumps(value, ensure_ascii=False)}",
        "  condition: selection",
    ]
    if d.chance(0.3):
        lines.insert(3, f"description: {json.dumps(message_text(d, 80), ensure_ascii=False)}")
    event_data = value if not modifier else f"a{value}b" if modifier == "|contains" else value
    if modifier == "|startswith":
        event_data = value + "tail"
    elif modifier == "|endswith":
        event_data = "head" + value

    def event(data: str) -> dict[str, Any]:
        return {
            "event": {"dataset": "windows.security"},
            "winlog": {"channel": "Security", "event_data": {field_name: data}},
        }

    # Sigma compares case-insensitively: the value that must not match differs in more than case
    # (by a character the value cannot hold).
    other = {"|endswith": value + "\x01", "|contains": "\x01"}.get(modifier, "\x01" + value)
    return SigmaCase("\n".join(lines) + "\n", rule_id, title, level, event(event_data), event(other))


# What breaks a rule on one line: (what is wrong, the line, what the problem must say).
SIGMA_BREAKAGES = (
    ("an impossible date", "date: 2023-02-30", "2023-02-30"),
    ("a control character", "author: a\x08b", "#x0008"),
    ("an unknown level", "level: severe", "severe"),
    ("an unknown status", "status: sure", "sure"),
    ("an author that is no text", "author: {name: x}", "author"),
    ("references that are no list", "references: 12", "references"),
    ("a tab for indentation", "\tfoo: bar", "tab"),
)


@dataclass(frozen=True, slots=True)
class BrokenRule:
    """A generated rule with one line broken: the problem must be on ``line`` and say ``said``."""

    text: str
    what: str
    line: int
    said: str


def broken_sigma_case(d: Draw) -> BrokenRule:
    """A generated rule with one of :data:`SIGMA_BREAKAGES` on its third line (replacing that key's valid line)."""
    what, broken, said = d.choice(SIGMA_BREAKAGES)
    key = broken.strip().partition(":")[0]
    lines = [line for line in sigma_case(d).text.splitlines() if not line.startswith(f"{key}:")]
    lines.insert(2, broken)
    return BrokenRule("\n".join(lines) + "\n", what, 3, said)


# -- the configuration -------------------------------------------------------------------------


# Words YAML 1.1 reads as booleans or null, not as text.
_YAML_WORDS = frozenset(("y", "n", "yes", "no", "on", "off", "true", "false", "null"))


@dataclass(frozen=True, slots=True)
class ConfigCase:
    """A configuration file's text and the settings it must give; or, broken, where its error must point."""

    text: str
    expected: Mapping[str, Any]  # dotted path into Settings (dict keys included) → value
    broken_key: str | None = None  # the dotted key made invalid
    broken_line: int | None = None  # its line in ``text``


def config_case(d: Draw) -> ConfigCase:
    """A configuration of the writer, retention and a syslog source, from generated values."""
    source_id = d.choice(string.ascii_lowercase) + d.text(string.ascii_lowercase + string.digits + "_", 0, 20)
    if source_id in _YAML_WORDS:
        source_id += "_"
    values: dict[str, Any] = {
        "writer.batch_size": d.integer(1, 100_000),
        "writer.flush_interval": d.integer(1, 60_000) / 1000,
        "elasticsearch.index_prefix": d.choice(string.ascii_lowercase) + d.text(string.ascii_lowercase + "-_", 0, 20),
        "retention.events": f"{d.integer(1, 999)}{d.choice(('ms', 's', 'm', 'h', 'd'))}",
        f"sources.{source_id}.mode": d.choice(("udp", "tcp")),
        f"sources.{source_id}.address": f"127.0.0.1:{d.integer(0, 65535)}",
        f"sources.{source_id}.agency": d.text(string.ascii_lowercase + string.digits + "-", 1, 30),
    }
    lines = [
        "# generated",
        "elasticsearch:",
        f'  index_prefix: "{values["elasticsearch.index_prefix"]}"',  # quoted: "no" is a boolean to YAML
        "writer:",
        f"  batch_size: {values['writer.batch_size']}",
        f"  flush_interval: {values['writer.flush_interval']}",
        "retention:",
        f"  events: {values['retention.events']}",
        "sources:",
        f"  {source_id}:",
        "    type: syslog",
        f"    mode: {values[f'sources.{source_id}.mode']}",
        f'    address: "{values[f"sources.{source_id}.address"]}"',
        f'    agency: "{values[f"sources.{source_id}.agency"]}"',
    ]
    return ConfigCase("\n".join(lines) + "\n", values)


# (dotted key, bad YAML value): each one breaks the key it names, and only it.
CONFIG_BREAKAGES = (
    ("writer.batch_size", "0"),
    ("writer.batch_size", "many"),
    ("writer.batch_size", "[1, 2]"),
    ("writer.flush_interval", "-1"),
    ("writer.flush_interval", "soon"),
    ("elasticsearch.index_prefix", "Not-Lower"),
    ("retention.events", "30 days"),
    ("retention.events", "2021-02-30"),
    ("sources.*.mode", "carrier-pigeon"),
    ("sources.*.address", "no port"),
)


def broken_config_case(d: Draw) -> ConfigCase:
    """A valid configuration with one key made invalid (or misspelled): the error must name it and its line."""
    valid = config_case(d)
    lines = valid.text.splitlines()
    if d.chance(0.2):  # a misspelled option ("type" is not one: it says which kind of source)
        options = [n for n, line in enumerate(lines) if line.startswith("  ") and line.rstrip()[-1] != ":"]
        number = d.choice([n for n in options if lines[n].strip().partition(":")[0] != "type"])
        name = lines[number].strip().partition(":")[0]
        lines[number] = lines[number].replace(f"{name}:", f"{name}x:", 1)
        return ConfigCase("\n".join(lines) + "\n", {}, ".".join([*_parents(lines, number), name + "x"]), number + 1)
    key, bad = d.choice(CONFIG_BREAKAGES)
    name = key.rpartition(".")[2]
    number = next(n for n, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
    indent = lines[number][: len(lines[number]) - len(lines[number].lstrip())]
    lines[number] = f"{indent}{name}: {bad}"
    return ConfigCase("\n".join(lines) + "\n", {}, ".".join([*_parents(lines, number), name]), number + 1)


def _parents(lines: list[str], number: int) -> list[str]:
    """The keys of the mappings that hold line ``number`` of a block-style YAML text."""
    parents: list[str] = []
    depth = len(lines[number]) - len(lines[number].lstrip())
    for line in reversed(lines[:number]):
        indent = len(line) - len(line.lstrip())
        if line.strip() and not line.lstrip().startswith("#") and indent < depth:
            parents.insert(0, line.strip().partition(":")[0])
            depth = indent
    return parents


# -- the examples the specifications give --------------------------------------------------------

RFC5424_EXAMPLES = (
    # RFC 5424 section 6.5, example 1 (BOM stands for U+FEFF).
    Case(
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        "\ufeff'su root' failed for lonvick on /dev/pts/8",
        {
            "log.syslog.facility.code": 4,
            "log.syslog.severity.code": 2,
            "@timestamp": "2003-10-11T22:14:15.003Z",
            "host.hostname": "mymachine.example.com",
            "log.syslog.appname": "su",
            "log.syslog.procid": ABSENT,
            "log.syslog.msgid": "ID47",
            "message": "'su root' failed for lonvick on /dev/pts/8",
            # su's own message, read by enrich_programs.
            "user.name": "lonvick",
            "user.effective.name": "root",
            "event.outcome": "failure",
            "tags": ABSENT,
        },
    ),
    # Example 2: a time zone offset and microseconds.
    Case(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        {
            "log.syslog.facility.code": 20,
            "log.syslog.severity.code": 5,
            "@timestamp": "2003-08-24T12:14:15.000003Z",
            "host.hostname": "192.0.2.1",
            "process.name": "myproc",
            "process.pid": 8710,
            "log.syslog.msgid": ABSENT,
            "message": "%% It's time to make the do-nuts.",
            "tags": ABSENT,
        },
    ),
    # Example 3: structured data.
    Case(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        'eventSource="Application" eventID="1011"] \ufeffAn application event log entry...',
        {
            "process.name": "evntslog",
            "log.syslog.msgid": "ID47",
            "log.syslog.structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
            },
            "message": "An application event log entry...",
            "tags": ABSENT,
        },
    ),
    # Example 4: two structured data elements and no message.
    Case(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
        {
            "log.syslog.structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                "examplePriority@32473": {"class": "high"},
            },
            "message": "",
            "tags": ABSENT,
        },
    ),
)

RFC3164_EXAMPLES = (
    # RFC 3164 section 5.4, example 1; su's message read by enrich_programs.
    Case(
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        {
            "log.syslog.facility.code": 4,
            "log.syslog.severity.code": 2,
            "@timestamp": "2023-10-11T22:14:15Z",  # the last 11 October before RECEIVED (June 2024)
            "host.hostname": "mymachine",
            "process.name": "su",
            "message": "'su root' failed for lonvick on /dev/pts/8",
            "user.name": "lonvick",
            "user.effective.name": "root",
            "event.outcome": "failure",
            "tags": ABSENT,
        },
    ),
    # Example 2: no tag, the host an IP address.
    Case(
        "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        {
            "log.syslog.facility.code": 1,
            "log.syslog.severity.code": 5,
            "@timestamp": "2024-02-05T17:32:18Z",
            "host.hostname": "10.0.0.99",
            "process.name": ABSENT,
            "message": "Use the BFG!",
            "tags": ABSENT,
        },
    ),
)
