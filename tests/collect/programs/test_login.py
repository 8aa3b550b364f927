"""login: console logins, successful and failed."""

from __future__ import annotations

from tests.collect.programs.support import summary, syslog


def test_login() -> None:
    root = syslog("Jan  2 03:04:05 h login[5]: ROOT LOGIN  on '/dev/tty1'")
    assert summary(root) == ("system.auth", "login", "success")
    assert root["user"] == {"name": "root"}
    failed = syslog("Jan  2 03:04:05 h login[5]: FAILED LOGIN (1) on '/dev/tty1' FOR 'UNKNOWN', Authentication failure")
    assert summary(failed) == ("system.auth", "login", "failure")
    assert failed["event"]["reason"] == "Authentication failure"
