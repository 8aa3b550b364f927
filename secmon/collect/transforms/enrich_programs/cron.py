"""cron: the commands it runs, and for whom."""

from __future__ import annotations

import re

from secmon.collect.transforms.ecs_fields import categorize, merge_fields
from secmon.collect.transforms.enrich_programs.pam import PAM_STARTS, enrich_pam
from secmon.events import Event

_CRON_COMMAND = re.compile(r"\((\S+)\) CMD \((.*)\)$", re.DOTALL)


def enrich_cron(event: Event, message: str) -> None:
    """``(root) CMD (run-parts /etc/cron.hourly)``; cron is no authentication program: the dataset stays."""
    if message.startswith(PAM_STARTS):
        enrich_pam(event, message, "cron")
        return
    match = _CRON_COMMAND.match(message)
    if match is not None:
        categorize(event, "cron_command", ["process"], ["start"], None)
        merge_fields(event, "user", {"name": match.group(1)})
        event["process"]["command_line"] = match.group(2)
