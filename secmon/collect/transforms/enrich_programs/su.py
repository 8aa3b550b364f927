"""su: one user becoming another, in the four shapes su implementations log it."""

from __future__ import annotations

import re

from secmon.collect.transforms.ecs_fields import categorize, merge_fields
from secmon.collect.transforms.enrich_programs.pam import AUTH_DATASET, PAM_STARTS, enrich_pam
from secmon.events import Event

_SU_BSD = re.compile(r"'su (\S*)' (failed|succeeded) for (\S+) on (\S+)$")
_SU_TO = re.compile(r"\(to (\S+)\) (\S+) on (\S+)$")
_SU_RESULT = re.compile(r"(FAILED|Successful) su for (\S+) by (\S+)$")
_SU_SULOG = re.compile(r"([+-]) (\S+) (\S+?):(\S+)$")


def enrich_su(event: Event, message: str) -> None:
    """``(to root) alice on pts/0``, ``FAILED su for root by bob``, ``'su root' failed for ...``, ``- pts/3 a:b``."""
    event["event"]["dataset"] = AUTH_DATASET
    if message.startswith(PAM_STARTS):
        enrich_pam(event, message, "su")
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
    categorize(event, "switch_user", ["authentication"], ["info"], outcome)
    merge_fields(event, "user", {"name": user, "effective": {"name": target}})
