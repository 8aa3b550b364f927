"""One process start out of an audit event's SYSCALL and EXECVE records.

auditd writes a program's execution as several lines sharing one serial number: SYSCALL (the
executable, pids, user ids), EXECVE (the arguments), then CWD, PATH, PROCTITLE. Each line is an
event of its own; Sigma's Linux ``process_creation`` rules, though, ask for the executable and
the command line together (``Image|endswith: '/base64'`` and ``CommandLine|contains: '-d'``).
:class:`ExecJoin` keeps each SYSCALL's process fields until the EXECVE of the same serial
comes, and adds them to it: the EXECVE event is the process start.

State is per source and host, bounded (the oldest SYSCALLs waiting are forgotten first); a
SYSCALL whose EXECVE never comes costs one slot until it is pushed out. Lines of one audit event
arriving out of order, or on different sources, are not joined: the EXECVE event then has the
arguments only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from secmon.events import Event

MAX_WAITING = 4096  # SYSCALL records waiting for their EXECVE, per pipeline
_JOINED = ("executable", "pid", "parent")


class ExecJoin:
    """Adds each SYSCALL record's process and user to the EXECVE record of the same audit event."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: OrderedDict[tuple[str, Any, Any], tuple[dict[str, Any], Any]] = OrderedDict()

    def join(self, event: Event, source: str) -> None:
        """Take one event of ``source``; an auditd EXECVE event gets its SYSCALL's fields (others pass)."""
        auditd = event.get("auditd")
        if auditd is None:
            return
        log = auditd.get("log", {})
        record_type = log.get("record_type")
        if record_type not in ("SYSCALL", "EXECVE"):
            return
        key = (source, log.get("node") or _host(event), log.get("sequence"))
        if record_type == "SYSCALL":
            process = event.get("process")
            if isinstance(process, dict) and "executable" in process:
                self._waiting[key] = (process, event.get("user"))
                if len(self._waiting) > MAX_WAITING:
                    self._waiting.popitem(last=False)
            return
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            return
        syscall_process, user = waiting
        process = event.setdefault("process", {})
        for name in _JOINED:  # the kernel's view of the program wins over the arguments' guess
            if name in syscall_process:
                process[name] = syscall_process[name]
        process["name"] = process["executable"].rpartition("/")[2]  # comm is cut at 15 characters
        if isinstance(user, dict):
            event.setdefault("user", {}).update(user)


def _host(event: Event) -> Any:
    host = event.get("host")
    return host.get("hostname") if isinstance(host, dict) else None
