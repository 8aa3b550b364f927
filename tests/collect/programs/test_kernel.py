"""The kernel's own messages: a firewall packet or an audit record, else nothing."""

from __future__ import annotations

from tests.collect.programs.support import summary, syslog


def test_other_kernel_lines_are_left_alone() -> None:
    event = syslog("Jul 27 14:41:59 combo kernel: audit(1122475266.4294965305:0): initialized")
    assert summary(event) == ("syslog", None, None)
