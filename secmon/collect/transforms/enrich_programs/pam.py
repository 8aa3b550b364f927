"""PAM modules' messages, under whichever program loaded them: ``pam_unix(sshd:auth): ...``."""

from __future__ import annotations

import re
from typing import Any

from secmon.collect.transforms.ecs_fields import categorize, merge_fields
from secmon.collect.transforms.parse_syslog import set_address
from secmon.events import Event

# Elastic's system module names the dataset of every authentication program so, PAM's included.
AUTH_DATASET = "system.auth"

PAM_STARTS = ("pam_", "PAM ")  # "pam_unix(sshd:auth): ...", "PAM 2 more authentication failures; ..."
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


def enrich_pam(event: Event, message: str, service: str) -> None:
    """A PAM module's message: ``pam_unix(sshd:auth): ...``, ``PAM 2 more ...`` or old ``sshd(pam_unix)``.

    ``service``: the program that logged it, unless the message names the PAM service itself.
    """
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
            categorize(event, "pam_session_opened", ["session"], ["start"], "success")
            if bare_user is not None:
                merge_fields(event, "user", {"name": bare_user})
            elif service in _SWITCH_USER_SERVICES:
                # "session opened for user root by alice(uid=1000)": alice acts as root.
                actor: dict[str, Any] = {"name": by_name} if by_name else {"id": by_uid}
                actor["effective"] = {"name": user}
                merge_fields(event, "user", actor)
            else:
                merge_fields(event, "user", {"name": user})
        elif (closed := _PAM_SESSION_CLOSED.match(message)) is not None:
            categorize(event, "pam_session_closed", ["session"], ["end"], "success")
            merge_fields(event, "user", {"name": closed.group(1)})
    elif (failure := _PAM_AUTH_FAILURE.match(message)) is not None:
        categorize(event, "pam_authentication_failure", ["authentication"], ["info"], "failure")
        fields = dict(_PAM_FIELD.findall(failure.group(2)))
        if user := fields.get("user"):
            merge_fields(event, "user", {"name": user})
        if rhost := fields.get("rhost"):
            set_address(event, "source", rhost)
    elif message == _PAM_USER_UNKNOWN:
        categorize(event, "pam_user_unknown", ["authentication"], ["info"], "failure")
    elif _PAM_MAX_RETRIES.match(message) is not None:
        categorize(event, "pam_max_retries", ["authentication"], ["info"], "failure")
