"""sudo: who ran which command as whom, and why it was refused."""

from __future__ import annotations

import re
from typing import Any

from secmon.collect.transforms.ecs_fields import categorize, merge_fields
from secmon.collect.transforms.enrich_programs.pam import AUTH_DATASET, PAM_STARTS, enrich_pam
from secmon.events import Event

_SUDO = re.compile(r"\s*(\S+) : (.*)$", re.DOTALL)


def enrich_sudo(event: Event, message: str) -> None:
    """``alice : [reason ; ]TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``."""
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(PAM_STARTS):
        enrich_pam(event, message, "sudo")
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
    merge_fields(event, "user", {"name": user, "effective": {"name": fields["USER"]}})
    process = event["process"]
    process["command_line"] = command
    if pwd := fields.get("PWD"):
        process["working_directory"] = pwd
    categorize(event, "sudo_command", ["process"], ["start"], "failure" if reason else "success")
    if reason:
        event["event"]["reason"] = reason
    sudo: dict[str, Any] = {"command": command, **{key.lower(): value for key, value in fields.items()}}
    if reason:
        sudo["error"] = reason
    merge_fields(event, "system", {"auth": {"sudo": sudo}})
