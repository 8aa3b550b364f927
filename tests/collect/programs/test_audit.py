"""Audit records that come through syslog: from audispd and from the kernel."""

from __future__ import annotations

from tests.collect.programs.support import summary, syslog


def test_auditd_through_syslog_and_from_the_kernel() -> None:
    through = syslog(
        "Jan  2 03:04:05 h audispd: node=web1 type=EXECVE msg=audit(1700000000.250:42): "
        'argc=2 a0="cat" a1="/etc/shadow"'
    )
    assert summary(through) == ("auditd", "execve", None)
    assert through["@timestamp"] == "2023-11-14T22:13:20.250Z"  # the record's time, not syslog's
    assert through["auditd"]["log"]["node"] == "web1"
    assert through["auditd"]["log"]["a1"] == "/etc/shadow"
    kernel = syslog(
        'Jan  2 03:04:05 h kernel: [  42.1] audit: type=1400 audit(1700000000.100:7): apparmor="DENIED" '
        'operation="open" profile="/usr/sbin/cupsd" name="/etc/shadow" pid=812 comm="cupsd" requested_mask="r"'
    )
    assert summary(kernel) == ("auditd", "avc", None)
    assert kernel["process"]["pid"] == 812
    assert kernel["process"]["name"] == "cupsd"
    assert kernel["auditd"]["log"]["apparmor"] == "DENIED"
