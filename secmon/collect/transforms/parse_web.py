"""Parse web server logs into ECS events: access logs (Apache and nginx), Apache and nginx error logs.

Access logs in the common or combined format, which Apache and nginx both write::

    1.2.3.4 - alice [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 "http://ref/" "UA"

also with the whole line wrapped in one more pair of double quotes, as some exports have it.
Error logs::

    [Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg                                   Apache 2.2
    [Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328] [client 1.2.3.4:5] msg  Apache 2.4
    2024/01/02 03:04:05 [error] 123#0: *4 msg, client: 1.2.3.4, server: x                      nginx

Error log timestamps carry no zone; they are read as UTC like every zone-less timestamp in secmon.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from secmon.collect.transforms.parse_syslog import MONTHS, set_address, to_int, to_port
from secmon.events import Event, mark_parse_failure
from secmon.timestamps import epoch_to_iso, utc_iso

ACCESS_DATASET = "apache.access"
APACHE_ERROR_DATASET = "apache.error"
NGINX_ERROR_DATASET = "nginx.error"

# Quoted fields: Apache escapes '"' and '\' inside them with a backslash.
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # written "unrolled": several times faster than (?:[^"\\]|\\.)*
_ACCESS = re.compile(
    rf"(\S+) (\S+) (\S+) \[([^\]]*)\] {_QUOTED} (\d{{3}}|-) (\d+|-)(?: {_QUOTED} {_QUOTED})?(.*)$", re.DOTALL
)
_CLF_TIME = re.compile(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?: ([+-])(\d\d)(\d\d))?$")
_REQUEST = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*) (\S+)(?: HTTP/(\d+(?:\.\d+)?))?$")

_APACHE_ERROR = re.compile(
    r"\[(?:[A-Z][a-z]{2}) ([A-Z][a-z]{2}) ([ \d]?\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? (\d{4})\]"
    r" \[(?:([^\]:]*):)?([a-z]+\d?)\]"
    r"(?: \[pid (\d+)(?::tid (\d+))?\])?"
    r"(?: \[client ([^\]]*)\])?"
    r" ?(.*)$",
    re.DOTALL,
)
_REFERER_SUFFIX = re.compile(r", referer: (\S*)$")
# Where Apache 2.4 puts an OS error first: "(70007)The timeout specified has expired: [client 1.2.3.4:5] AH01075: ..."
_LATE_CLIENT = re.compile(r"\[client ([^\]]*)\] ")
_NGINX_ERROR = re.compile(
    r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[([a-z]+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)$", re.DOTALL
)
# nginx appends the request's context to the message: ", client: 1.2.3.4, server: x, request: "GET / HTTP/1.1"".
_NGINX_CLIENT = re.compile(r", client: ([^,\s]+)")
_NGINX_REQUEST = re.compile(rf", request: {_QUOTED}")
_NGINX_HOST = re.compile(r', host: "([^"]*)"')


def parse_apache_access(line: str, *, received: float | None = None) -> Event:
    """Parse one access log line in the common or combined format (Apache, nginx) into an ECS event."""
    text = line.rstrip("\r\n")
    # Some exports wrap each line in one more pair of quotes; a real line never starts with one.
    if len(text) > 1 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    event: Event = {"message": text, "event": {"original": line, "dataset": ACCESS_DATASET}}
    match = _ACCESS.match(text)
    if match is None:
        mark_parse_failure(event, "not an access log line in the common or combined format")
        event["@timestamp"] = epoch_to_iso(received)
        return event
    client, _, user, time_text, request, status, size, referrer, agent, rest = match.groups()

    set_address(event, "source", client)
    if user != "-":
        event["user"] = {"name": user}
    timestamp = _clf_time(time_text)
    event["@timestamp"] = timestamp if timestamp is not None else epoch_to_iso(received)
    http: dict[str, Any] = {}
    request_fields: dict[str, Any] = {}
    response: dict[str, Any] = {}
    _apply_request(event, http, request_fields, request)
    meta = event["event"]
    meta["category"] = ["web"]
    meta["type"] = ["access"]
    if status != "-":
        code = int(status)
        response["status_code"] = code
        meta["outcome"] = "failure" if code >= 400 else "success"
    if size != "-" and (length := to_int(size)) is not None:
        response["body"] = {"bytes": length}
    if referrer is not None and referrer != "-":
        request_fields["referrer"] = referrer
    if agent is not None and agent != "-":
        event["user_agent"] = {"original": agent}
    if request_fields:
        http["request"] = request_fields
    if response:
        http["response"] = response
    if http:
        event["http"] = http

    if timestamp is None:
        mark_parse_failure(event, f"access log time [{time_text[:40]}] is not dd/Mon/yyyy:hh:mm:ss +zzzz")
    elif rest and (agent is None or rest[0] != " "):
        # Fields after the user agent (nginx's X-Forwarded-For, a response time) are fine; anything
        # else means a quote is missing, most often because the line was cut.
        mark_parse_failure(event, "access log line is malformed after the byte count (cut short, or a quote missing)")
    return event


def _apply_request(event: Event, http: dict[str, Any], request_fields: dict[str, Any], request: str) -> None:
    """``GET /path?query HTTP/1.1``; a request line that is not one (a scanner's bytes) is left in the message."""
    match = _REQUEST.match(request)
    if match is None:
        return
    method, target, version = match.groups()
    request_fields["method"] = method
    if version is not None:
        http["version"] = version
    url: dict[str, Any] = {"original": target}
    if target[0] == "/":
        path, question, query = target.partition("?")
        url["path"] = path
        if question:
            url["query"] = query
    elif target.startswith(("http://", "https://")):  # absolute form, sent to proxies
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError:  # "http://[::1", "http://host:99999"
            parts, port = None, None
        if parts is not None:
            url["scheme"] = parts.scheme
            if parts.hostname:
                url["domain"] = parts.hostname
            if port is not None:
                url["port"] = port
            url["path"] = parts.path
            if "?" in target:
                url["query"] = parts.query
    event["url"] = url


@lru_cache(maxsize=4096)
def _clf_time(text: str) -> str | None:
    """``10/Oct/2000:13:55:36 -0700`` as ISO 8601 UTC; cached, as a busy server logs each second many times."""
    match = _CLF_TIME.match(text)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
    month = MONTHS.get(month_name)
    if month is None:
        return None
    try:
        moment = datetime(int(year), month, int(day), int(hour), int(minute), int(second))
        if sign is not None:
            offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
            moment = moment.replace(tzinfo=timezone(offset if sign == "+" else -offset))
        return utc_iso(moment)
    except (ValueError, OverflowError):
        return None


def parse_apache_error(line: str, *, received: float | None = None) -> Event:
    """Parse one Apache 2.2 or 2.4 error log line (``[time] [module:level] [pid] [client] message``)."""
    event: Event = {"event": {"original": line, "dataset": APACHE_ERROR_DATASET}}
    match = _APACHE_ERROR.match(line)
    if match is None:
        event["message"] = line.strip()
        event["@timestamp"] = epoch_to_iso(received)
        return mark_parse_failure(
            event, "not an Apache error log line: no [Www Mmm dd hh:mm:ss yyyy] [level] at its start"
        )
    month, day, hour, minute, second, fraction, year, module, level, pid, thread, client, message = match.groups()
    message = message.strip()
    referrer = _REFERER_SUFFIX.search(message)
    if referrer is not None:
        event["http"] = {"request": {"referrer": referrer.group(1)}}
        message = message[: referrer.start()]
    event["message"] = message
    event["log"] = {"level": level}
    if module:
        event["apache"] = {"error": {"module": module}}
    # to_int, not int: a pid of 30 digits is no long that Elasticsearch (or orjson) can take.
    process: dict[str, Any] = {}
    if pid is not None and (pid_number := to_int(pid)) is not None:
        process["pid"] = pid_number
    if thread is not None and (thread_id := to_int(thread)) is not None:
        process["thread"] = {"id": thread_id}
    if process:
        event["process"] = process
    if client is None and (late := _LATE_CLIENT.search(message, 0, 200)) is not None:
        client = late.group(1)
    if client:
        # Apache 2.4 writes "ip:port" (also for IPv6: "::1:5000"), 2.2 the address alone.
        address, port = client, None
        if module is not None or pid is not None:
            head, _, tail = client.rpartition(":")
            if head and (port := to_port(tail)) is not None:
                address = head
        set_address(event, "source", address)
        if port is not None:
            event["source"]["port"] = port
    try:
        microsecond = int(fraction.ljust(6, "0")) if fraction else 0
        moment = datetime(int(year), MONTHS[month], int(day), int(hour), int(minute), int(second), microsecond)
    except (KeyError, ValueError):
        event["@timestamp"] = epoch_to_iso(received)
        return mark_parse_failure(event, f"Apache error log time {line[1 : line.find(']')]!r} is not a date")
    event["@timestamp"] = utc_iso(moment)
    return event


def parse_nginx_error(line: str, *, received: float | None = None) -> Event:
    """Parse one nginx error log line (``yyyy/mm/dd hh:mm:ss [level] pid#tid: *conn message``)."""
    event: Event = {"event": {"original": line, "dataset": NGINX_ERROR_DATASET}}
    match = _NGINX_ERROR.match(line)
    if match is None:
        event["message"] = line.strip()
        event["@timestamp"] = epoch_to_iso(received)
        return mark_parse_failure(
            event, "not an nginx error log line: no yyyy/mm/dd hh:mm:ss [level] pid#tid: at its start"
        )
    year, month, day, hour, minute, second, level, pid, thread, connection, message = match.groups()
    message = message.strip()
    event["message"] = message
    event["log"] = {"level": level}
    process: dict[str, Any] = {}
    if (pid_number := to_int(pid)) is not None:
        process["pid"] = pid_number
    if (thread_id := to_int(thread)) is not None:
        process["thread"] = {"id": thread_id}
    if process:
        event["process"] = process
    if connection is not None and (connection_id := to_int(connection)) is not None:
        event["nginx"] = {"error": {"connection_id": connection_id}}
    if (client := _NGINX_CLIENT.search(message)) is not None:
        set_address(event, "source", client.group(1))
    if (request := _NGINX_REQUEST.search(message)) is not None:
        http: dict[str, Any] = {}
        request_fields: dict[str, Any] = {}
        _apply_request(event, http, request_fields, request.group(1))
        if request_fields:
            http["request"] = request_fields
        if http:
            event["http"] = http
    if (host := _NGINX_HOST.search(message)) is not None and "url" in event:
        event["url"].setdefault("domain", host.group(1))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        event["@timestamp"] = epoch_to_iso(received)
        return mark_parse_failure(event, f"nginx error log time {line[:19]!r} is not a date")
    event["@timestamp"] = utc_iso(moment)
    return event
