"""login (shadow-utils): console logins of root and of users, and the failed ones."""

from __future__ import annotations

import re

from secmon.collect.transforms.ecs_fields import categorize, merge_fields
from secmon.collect.transforms.enrich_programs.pam import AUTH_DATASET, PAM_STARTS, enrich_pam
from secmon.collect.transforms.parse_syslog import set_address
from secmon.events import Event

_LOGIN_ROOT = re.compile(r"ROOT LOGIN\s+(?:ON|on) '?([^'\s]+)'?(?: FROM '?([^'\s]+)'?)?$")
_LOGIN_USER = re.compile(r"LOGIN ON '?([^'\s]+)'? BY '?([^'\s]+)'?(?: FROM '?([^'\s]+)'?)?$")
_LOGIN_FAILED = re.compile(
    r"FAILED LOGIN \(?\d+\)? (?:ON|on) '?([^'\s]+)'?(?: FROM '?([^'\s]*)'?)? FOR '?([^',\s]+)'?, (.*)$", re.DOTALL
)


def enrich_login(event: Event, message: str) -> None:
    """``ROOT LOGIN on '/dev/tty1'``, ``LOGIN ON tty1 BY alice``, ``FAILED LOGIN (1) on ... FOR 'x', reason``."""
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(PAM_STARTS):
        enrich_pam(event, message, "login")
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
    categorize(event, "login", ["authentication"], ["start"], outcome)
    merge_fields(event, "user", {"name": user})
    if address:
        set_address(event, "source", address)
