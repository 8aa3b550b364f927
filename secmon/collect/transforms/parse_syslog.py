"""Parse one syslog line (RFC 3164, RFC 5424 or a plain /var/log line) into an ECS event.

These shapes are understood; the ``<PRI>`` is there when the line came over the network::

    <34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed          RFC 3164 (BSD)
    Oct 11 22:14:15 mymachine su[230]: 'su root' failed              the same, as written to a file
    2024-01-02T03:04:05.123+01:00 mymachine su[230]: 'su root'...    rsyslog's RFC 3339 timestamps
    <165>1 2003-10-11T22:14:15.003Z host app 77 ID47 [id@1 a="b"] msg  RFC 5424

The small helpers at the bottom (:func:`iso_to_utc`, :func:`is_ip`, :func:`set_address`, ...) are
shared by the other parsers in this package, which all build on syslog's conventions.
"""

from __future__ import annotations

import ipaddress
import re
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from secmon.events import Event, mark_parse_failure
from secmon.timestamps import epoch_to_iso, utc_iso

DATASET = "syslog"

FACILITY_NAMES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)
# The names RFC 5424 table 2 gives, as ECS's own example ("Error") spells them.
SEVERITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")

# Spelled out: calendar.month_abbr follows the locale, syslog does not.
MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# A year-less RFC 3164 timestamp this far ahead of the time received is taken to be last year's
# (a December line read in January); less than that is clock skew between sender and receiver.
FUTURE_TOLERANCE_SECONDS = 86400.0

_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424_HEADER = re.compile(r"([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_RFC3164 = re.compile(
    r"""
    (?:
        (?P<bsd>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\ +\d{1,2}(?:\ \d{4})?\ \d\d:\d\d:\d\d(?:\.\d{1,9})?)
      | (?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)
    )
    (?:\s+|$)
    # A hostname (or an IPv6 address), unless the next word is already the tag ("su:", "sshd[12]:"):
    # some senders omit it.
    (?:(?P<host>[^\s:\[\]]+|(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]+)\s+)?
    # The tag may hold spaces ("syslogd 1.4.1:", "-- root[2421]:"). RFC 3164 caps it at 32
    # characters; real ones run longer, so 64 here.
    (?:(?P<tag>[^\s:\[\]](?:[^:\[\]]{0,62}[^\s:\[\]])?)(?:\[(?P<pid>[^\[\]]{0,128})\])?:(?:\s|$))?
    (?P<message>.*)
    """,
    re.VERBOSE | re.DOTALL,
)
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")
# Quoted values are matched "unrolled" ([^"\\]*(?:\\.[^"\\]*)*), several times faster than (?:[^"\\]|\\.)*.
_SD_ELEMENT = re.compile(r"""\[([^\s="\]]{1,64})((?:\ +[^\s="\]]{1,32}="[^"\\]*(?:\\.[^"\\]*)*")*)\ *\]""", re.VERBOSE)
_SD_PARAM = re.compile(r"""([^\s="\]]{1,32})="([^"\\]*(?:\\.[^"\\]*)*)\"""")
_SD_ESCAPE = re.compile(r"""\\(["\\\]])""")
_ISO_COMPACT_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def parse_syslog(message: str, *, received: float | None = None) -> Event:
    """Parse one syslog line (RFC 5424, RFC 3164 with or without ``<PRI>``) into an ECS event."""
    event = _parse(message, received)
    if "@timestamp" not in event:  # none in the line, or not a date: when it was received
        event["@timestamp"] = epoch_to_iso(received)
    return event


def _parse(message: str, received: float | None) -> Event:
    event: Event = {"event": {"original": message, "dataset": DATASET}}
    syslog: dict[str, Any] = {}
    rest = message
    pri = _PRI.match(message)
    if pri is not None:
        priority = int(pri.group(1))
        if priority > 191:
            event["message"] = message.strip()
            return mark_parse_failure(event, f"syslog <PRI> {priority} is out of range (0-191)")
        syslog["priority"] = priority
        syslog["facility"] = {"code": priority >> 3, "name": FACILITY_NAMES[priority >> 3]}
        syslog["severity"] = {"code": priority & 7, "name": SEVERITY_NAMES[priority & 7]}
        event["log"] = {"syslog": syslog}
        rest = message[pri.end() :]
        header = _RFC5424_HEADER.match(rest)
        if header is not None and (header.group(2) == "-" or header.group(2)[:1].isdigit()):
            return _parse_rfc5424(event, syslog, header, rest)
    return _parse_rfc3164(event, syslog, rest, received, has_pri=pri is not None)


def _parse_rfc5424(event: Event, syslog: dict[str, Any], header: re.Match[str], line: str) -> Event:
    version, timestamp, hostname, appname, procid, msgid = header.groups()
    syslog["version"] = version
    failure = None
    if timestamp != "-":
        iso = iso_to_utc(timestamp)
        if iso is None:
            failure = f"RFC 5424 timestamp {timestamp[:40]!r} is not RFC 3339"
        else:
            event["@timestamp"] = iso
    if hostname != "-":
        syslog["hostname"] = hostname
        event["host"] = {"hostname": hostname}
    if appname != "-":
        syslog["appname"] = appname
    if procid != "-":
        syslog["procid"] = procid
    if msgid != "-":
        syslog["msgid"] = msgid
    if appname != "-" or procid != "-":
        process: dict[str, Any] = {}
        event["process"] = process
        if appname != "-":
            process["name"] = appname
        pid = to_int(procid)
        if pid is not None:
            process["pid"] = pid

    rest = line[header.end() :]
    if rest[:1] == "-":
        text = rest[2:] if rest[1:2] in (" ", "") else None
        if text is None:
            failure = failure or "RFC 5424 structured data is neither '-' nor [elements]"
            text = rest
    elif rest[:1] == "[":
        structured, end = parse_structured_data(rest)
        if structured:
            syslog["structured_data"] = structured
        if end < len(rest) and rest[end] != " ":
            failure = failure or f"RFC 5424 structured data is malformed at {rest[end : end + 24]!r}"
            text = rest[end:]
        else:
            text = rest[end + 1 :]
    else:
        failure = failure or "RFC 5424 structured data is neither '-' nor [elements]"
        text = rest
    # MSG may start with a byte order mark to say it is UTF-8 (RFC 5424 section 6.4).
    event["message"] = text.removeprefix("\ufeff").strip()
    if failure is not None:
        mark_parse_failure(event, failure)
    return event


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, Any]], int]:
    """RFC 5424 STRUCTURED-DATA at the start of ``text`` as ``{SD-ID: {name: value}}``, and where it ends.

    A parameter named more than once in one element keeps all its values, as a list.
    """
    elements: dict[str, dict[str, Any]] = {}
    position = 0
    while (element := _SD_ELEMENT.match(text, position)) is not None:
        params: dict[str, Any] = elements.setdefault(element.group(1), {})
        for name, raw in _SD_PARAM.findall(element.group(2)):
            # Only \" \\ and \] are escapes; any other backslash is kept (RFC 5424 section 6.3.3).
            value = _SD_ESCAPE.sub(r"\1", raw) if "\\" in raw else raw
            previous = params.get(name)
            if previous is None:
                params[name] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                params[name] = [previous, value]
        position = element.end()
    return elements, position


def _parse_rfc3164(event: Event, syslog: dict[str, Any], line: str, received: float | None, *, has_pri: bool) -> Event:
    match = _RFC3164.match(line)
    if match is None:
        event["message"] = line.strip()
        if has_pri:
            # RFC 3164 section 4.3.2: a relay keeps such a message whole, as MSG.
            reason = "syslog line has no RFC 3164 or RFC 5424 timestamp after its <PRI>"
        else:
            reason = (
                "not a syslog line: no <PRI>, and no 'Mmm dd hh:mm:ss' or RFC 3339 timestamp and a space at its start"
            )
        return mark_parse_failure(event, reason)

    host, tag, pid_text = match.group("host", "tag", "pid")
    if host is not None:
        syslog["hostname"] = host
        event["host"] = {"hostname": host}
    if tag is not None:
        syslog["appname"] = tag
        process: dict[str, Any] = {"name": tag}
        if pid_text is not None:
            syslog["procid"] = pid_text
            pid = to_int(pid_text)
            if pid is not None:
                process["pid"] = pid
        event["process"] = process
    if syslog:
        event["log"] = {"syslog": syslog}
    event["message"] = match.group("message").strip()

    iso_text = match.group("iso")
    if iso_text is not None:
        timestamp = iso_to_utc(iso_text)
        if timestamp is None:
            return mark_parse_failure(event, f"syslog timestamp {iso_text!r} is not a date")
    else:
        bsd_text = match.group("bsd")
        timestamp = _bsd_timestamp(bsd_text, received)
        if timestamp is None:
            return mark_parse_failure(event, f"syslog timestamp {bsd_text!r} is not a date")
    event["@timestamp"] = timestamp
    return event


def _bsd_timestamp(text: str, received: float | None) -> str | None:
    """``Mmm dd hh:mm:ss`` as ISO 8601 UTC (no zone is given), in the year it most likely was."""
    now = received if received else time.time()
    try:
        year = time.gmtime(now).tm_year
    except (OverflowError, OSError, ValueError):
        now = time.time()
        year = time.gmtime(now).tm_year
    for candidate_year in (year, year - 1):
        moment = _bsd_moment(text, candidate_year)
        if moment is None:  # 29 February of a year that has none: try the year before
            continue
        epoch, iso, year_given = moment
        if year_given or epoch - now <= FUTURE_TOLERANCE_SECONDS:
            return iso
    return None


@lru_cache(maxsize=8192)
def _bsd_moment(text: str, year: int) -> tuple[float, str, bool] | None:
    """Seconds since the epoch and ISO form of ``text`` in ``year`` (unless it names its own), or ``None``.

    Cached, and the date's part cached apart: a host logs many lines a second, and many seconds a day.
    """
    match = _BSD_TIME.match(text)
    if match is None:
        return None
    month, day_text, year_text, hour_text, minute_text, second_text, fraction = match.groups()
    day = _bsd_day(int(year_text) if year_text else year, MONTHS.get(month, 0), int(day_text))
    hour, minute, second = int(hour_text), int(minute_text), int(second_text)
    if day is None or hour > 23 or minute > 59 or second > 59:  # hour 25, 31 April, 29 February of a common year
        return None
    day_seconds, date = day
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    # As datetime.timestamp() computes it, so a time compares with "now" as it always did.
    epoch = ((day_seconds + hour * 3600 + minute * 60 + second) * 1_000_000 + microsecond) / 1_000_000
    iso = f"{date}T{hour_text}:{minute_text}:{second_text}"
    if microsecond == 0:
        iso += "Z"
    elif microsecond % 1000 == 0:
        iso += f".{microsecond // 1000:03d}Z"
    else:
        iso += f".{microsecond:06d}Z"
    return epoch, iso, year_text is not None


@lru_cache(maxsize=1024)
def _bsd_day(year: int, month: int, day: int) -> tuple[int, str] | None:
    """The day's start in seconds since the epoch and its ISO date, or None when there is no such day."""
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return int(start.timestamp()), f"{year:04d}-{month:02d}-{day:02d}"


# -- helpers the other parsers share ---------------------------------------------------------


def iso_to_utc(text: str) -> str | None:
    """An RFC 3339 / ISO 8601 timestamp (no zone means UTC) as an ISO 8601 UTC string, or ``None``."""
    if text[-1:] == "z":
        text = text[:-1] + "Z"
    if len(text) > 10 and text[10] == "t":
        text = text[:10] + "T" + text[11:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # Python 3.11 reads "+01:00" but not the "+0100" some senders write.
        compact = _ISO_COMPACT_OFFSET.search(text)
        if compact is None:
            return None
        try:
            moment = datetime.fromisoformat(f"{text[: compact.start()]}{compact.group(1)}:{compact.group(2)}")
        except ValueError:
            return None
    try:
        return utc_iso(moment)
    except OverflowError:  # year 1 with a positive offset falls before datetime.min
        return None


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address that Elasticsearch's ``ip`` type accepts."""
    if _IPV4.fullmatch(text) is not None:
        return True
    if ":" not in text or _IPV6_CHARS.fullmatch(text) is None:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def set_address(event: Event, side: str, address: str) -> None:
    """Set ``<side>.address`` and ``<side>.ip`` (an IP) or ``<side>.domain`` (a name), as ECS asks."""
    target = event.get(side)
    if not isinstance(target, dict):
        target = event[side] = {}
    target["address"] = address
    if is_ip(address):
        target["ip"] = address
    else:
        target["domain"] = address


def to_int(text: str, max_digits: int = 18) -> int | None:
    """``text`` as an int when it is ASCII digits only (and fits an Elasticsearch ``long``), else ``None``."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def to_port(text: str) -> int | None:
    """``text`` as a TCP/UDP port number, or ``None``."""
    number = to_int(text, 5)
    return number if number is not None and number <= 65535 else None
