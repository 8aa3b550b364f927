"""enrich(): the program a parsed syslog event names picks the enricher that reads its message."""

from __future__ import annotations

import pytest

from secmon.collect.transforms.enrich_programs import PROGRAMS, enrich
from secmon.collect.transforms.parse_syslog import parse_syslog
from tests.collect.programs.support import RECEIVED, summary, syslog


def test_unknown_programs_are_left_as_parsed() -> None:
    line = "Jun 17 07:07:00 combo ftpd[29504]: connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at x"
    assert syslog(line) == parse_syslog(line, received=RECEIVED)


def test_every_program_name_is_registered_in_lower_case() -> None:
    # enrich() looks a program up by its name in lower case: a key with a capital is never found.
    assert [name for name in PROGRAMS if name != name.lower()] == []


@pytest.mark.parametrize("program", ["/usr/sbin/sshd", "SSHD", "sshd-session", "sshd-auth"])
def test_a_program_is_found_by_its_name_in_any_case_and_after_a_path(program: str) -> None:
    event = syslog(f"Jan  2 03:04:05 h {program}[9]: Invalid user admin from 10.0.0.5 port 40000")
    assert summary(event) == ("system.auth", "ssh_invalid_user", "failure")
    assert event["process"]["name"] == program  # what the line says stays as it is


def test_an_unknown_program_is_still_read_for_pam_and_audit_records() -> None:
    pam = syslog(
        "Jan  2 03:04:05 h systemd-logind[9]: pam_unix(systemd-user:session): session opened for user bob(uid=1000) "
        "by (uid=0)"
    )
    assert summary(pam) == ("system.auth", "pam_session_opened", "success")
    assert pam["user"] == {"name": "bob"}
    audit = syslog(
        "Jan  2 03:04:05 h forwarder[9]: type=USER_LOGIN msg=audit(1700000000.5:9): pid=77 uid=0 res=success"
    )
    assert summary(audit) == ("auditd", "user_login", "success")
    assert audit["process"]["pid"] == 77  # the audited process, not the forwarder


def test_an_event_without_a_message_or_a_program_is_returned_as_it_is() -> None:
    for event in (
        {"event": {}},
        {"message": "Invalid user a from 10.0.0.5", "event": {}},
        {"message": "Invalid user a from 10.0.0.5", "process": {"pid": 1}, "event": {}},
        {"message": 1, "process": {"name": "sshd"}},
    ):
        before = repr(event)
        assert enrich(event) is event
        assert repr(event) == before
