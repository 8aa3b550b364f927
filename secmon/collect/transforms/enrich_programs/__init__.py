"""Program-specific enrichment of parsed syslog events: what sshd, sudo, the kernel's firewall... say.

:func:`enrich` looks at ``process.name`` and ``message`` of an event from
:func:`~secmon.collect.transforms.parse_syslog.parse_syslog` and hands the message to the
enricher :data:`PROGRAMS` names for the program, which adds what the program's own message format
says: who logged in from where (:mod:`.sshd`, :mod:`.pam`, :mod:`.login`, :mod:`.su`,
:mod:`.sudo`), which command ran (:mod:`.sudo`, :mod:`.cron`), which packet a firewall rule logged
(:mod:`.firewall`, through :mod:`.kernel`), or a whole audit record (:mod:`.audit`, read by
:mod:`~secmon.collect.transforms.parse_auditd`). A PAM module's message goes to :mod:`.pam`
whichever program logged it.

Authentication programs get ``event.dataset = "system.auth"``, as Elastic's system module names
them, even for a message that matches none of their patterns (which gets nothing else).

To cover another program: write a module ``<program>.py`` holding its patterns and
``enrich_<program>(event, message)``, and add that function to :data:`PROGRAMS` under the
program's name in lower case. Shared field writers are in :mod:`~secmon.collect.transforms.ecs_fields`.
"""

from __future__ import annotations

from collections.abc import Callable

from secmon.collect.transforms.enrich_programs.audit import enrich_audit
from secmon.collect.transforms.enrich_programs.cron import enrich_cron
from secmon.collect.transforms.enrich_programs.kernel import enrich_kernel
from secmon.collect.transforms.enrich_programs.login import enrich_login
from secmon.collect.transforms.enrich_programs.pam import PAM_STARTS, enrich_pam
from secmon.collect.transforms.enrich_programs.sshd import enrich_sshd
from secmon.collect.transforms.enrich_programs.su import enrich_su
from secmon.collect.transforms.enrich_programs.sudo import enrich_sudo
from secmon.events import Event

__all__ = ["PROGRAMS", "ProgramEnricher", "enrich"]

ProgramEnricher = Callable[[Event, str], None]
"""Adds to an event what its program's ``message`` says; the event's ``event`` and ``process`` exist."""

PROGRAMS: dict[str, ProgramEnricher] = {
    "sshd": enrich_sshd,
    "sshd-session": enrich_sshd,  # OpenSSH 9.8 and later log from a per-connection binary
    "sshd-auth": enrich_sshd,
    "sudo": enrich_sudo,
    "su": enrich_su,
    "login": enrich_login,
    "cron": enrich_cron,
    "crond": enrich_cron,
    "kernel": enrich_kernel,
    "audit": enrich_audit,
    "auditd": enrich_audit,
    "audispd": enrich_audit,
    "audisp-syslog": enrich_audit,
}
"""Program name, in lower case, to its enricher."""


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
        enrich_pam(event, message, program)
        return event
    enricher = PROGRAMS.get(program)
    if enricher is not None:
        enricher(event, message)
    # Programs no enricher knows may still log through PAM, or forward audit records.
    elif message.startswith(PAM_STARTS):
        enrich_pam(event, message, program)
    elif "audit(" in message:
        enrich_audit(event, message)
    return event
