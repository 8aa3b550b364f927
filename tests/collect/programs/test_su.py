"""su: one user becoming another."""

from __future__ import annotations

import pytest

from tests.collect.programs.support import summary, syslog


@pytest.mark.parametrize(
    ("message", "user", "target", "outcome"),
    [
        ("(to root) alice on pts/0", "alice", "root", "success"),
        ("FAILED su for root by mallory", "mallory", "root", "failure"),
        ("Successful su for oracle by root", "root", "oracle", "success"),
        ("- pts/3 mallory:root", "mallory", "root", "failure"),
        ("'su root' failed for lonvick on /dev/pts/8", "lonvick", "root", "failure"),  # the RFC 3164 example
    ],
)
def test_su(message: str, user: str, target: str, outcome: str) -> None:
    event = syslog(f"Jan  2 03:04:05 h su[5]: {message}")
    assert summary(event) == ("system.auth", "switch_user", outcome)
    assert event["user"] == {"name": user, "effective": {"name": target}}
