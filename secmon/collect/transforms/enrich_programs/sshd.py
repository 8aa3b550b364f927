"""OpenSSH's sshd: logins accepted and failed, invalid users, disconnections, suspicious peers."""

from __future__ import annotations

import re

from secmon.collect.transforms.ecs_fields import categorize, merge_fields, set_peer
from secmon.collect.transforms.enrich_programs.pam import AUTH_DATASET, PAM_STARTS, enrich_pam
from secmon.events import Event

_REPEATED = re.compile(r"message repeated \d+ times: \[\s*(.*)\]$", re.DOTALL)
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


def enrich_sshd(event: Event, message: str) -> None:
    """What sshd says; the message's first word picks the patterns worth trying."""
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
            merge_fields(
                event, "system", {"auth": {"ssh": {"event": "Invalid" if invalid else result, "method": method}}}
            )
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
                merge_fields(event, "user", {"name": user})
        elif (match := _SSH_CONNECTION.match(message)) is not None:
            _network(event, "ssh_connection", ["connection", "start"], match.group(1), match.group(2))
            set_peer(event, "destination", match.group(3), match.group(4))
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
    elif message.startswith(PAM_STARTS):
        enrich_pam(event, message, "sshd")


def _auth(
    event: Event, action: str, outcome: str, *, user: str | None, address: str | None = None, port: str | None = None
) -> None:
    categorize(event, action, ["authentication"], ["info"], outcome)
    if user:
        merge_fields(event, "user", {"name": user})
    if address is not None:
        set_peer(event, "source", address, port)


def _network(event: Event, action: str, types: list[str], address: str, port: str | None) -> None:
    categorize(event, action, ["network"], types, None)
    set_peer(event, "source", address, port)
