"""sshd: logins, invalid users, disconnections, against loghub's OpenSSH templates too."""

from __future__ import annotations

import ipaddress
import re

from secmon.events import get_field
from tests.collect.programs.support import expected_for, read_lines, reference_rows, summary, syslog

OPENSSH_TEMPLATES = [
    ("Accepted password for", ("system.auth", "ssh_login", "success")),
    ("Failed password for", ("system.auth", "ssh_login", "failure")),
    ("Failed none for invalid user", ("system.auth", "ssh_login", "failure")),
    ("message repeated <*> times: [ Failed password", ("system.auth", "ssh_login", "failure")),
    ("Invalid user", ("system.auth", "ssh_invalid_user", "failure")),
    ("input_userauth_request: invalid user", ("system.auth", "ssh_invalid_user", "failure")),
    ("pam_unix(sshd:auth): authentication failure", ("system.auth", "pam_authentication_failure", "failure")),
    ("PAM <*> more authentication failure", ("system.auth", "pam_authentication_failure", "failure")),
    ("pam_unix(sshd:auth): check pass; user unknown", ("system.auth", "pam_user_unknown", "failure")),
    ("PAM service(sshd) ignoring max retries", ("system.auth", "pam_max_retries", "failure")),
    ("pam_unix(sshd:session): session opened", ("system.auth", "pam_session_opened", "success")),
    ("pam_unix(sshd:session): session closed", ("system.auth", "pam_session_closed", "success")),
    ("Received disconnect from", ("system.auth", "ssh_disconnect", None)),
    ("error: Received disconnect from", ("system.auth", "ssh_disconnect", None)),
    ("Connection closed by", ("system.auth", "ssh_disconnect", None)),
    (
        "Disconnecting: Too many authentication failures",
        ("system.auth", "ssh_too_many_authentication_failures", "failure"),
    ),
    ("reverse mapping checking getaddrinfo", ("system.auth", "ssh_possible_break_in", None)),
    ("Did not receive identification string", ("system.auth", "ssh_no_identification", None)),
    ("fatal: Write failed", ("system.auth", None, None)),  # sshd's, so system.auth, but nothing to add
]


def test_every_openssh_line_gets_the_action_its_loghub_template_says() -> None:
    lines, rows = read_lines("loghub_OpenSSH_2k.log"), reference_rows("loghub_OpenSSH_2k.structured.csv")
    for line, row in zip(lines, rows, strict=True):
        event = syslog(line)
        assert summary(event) == expected_for(row["EventTemplate"], OPENSSH_TEMPLATES), line
        # Whatever address or user was taken out of the message is really in it.
        if (ip := get_field(event, "source.ip")) is not None:
            ipaddress.ip_address(ip)
            assert re.search(rf"(?<![\w.:]){re.escape(ip)}(?![\w.])", row["Content"]), line
        if (user := get_field(event, "user.name")) is not None:
            assert f" {user} " in f" {row['Content']} " or f"user={user}" in row["Content"], line


def test_openssh_action_counts() -> None:
    counts: dict[tuple[str | None, ...], int] = {}
    for line in read_lines("loghub_OpenSSH_2k.log"):
        key = summary(syslog(line))
        counts[key] = counts.get(key, 0) + 1
    assert counts == {
        ("system.auth", "ssh_login", "failure"): 524,
        ("system.auth", "ssh_login", "success"): 1,
        ("system.auth", "pam_authentication_failure", "failure"): 504,
        ("system.auth", "ssh_disconnect", None): 502,
        ("system.auth", "ssh_invalid_user", "failure"): 226,
        ("system.auth", "pam_user_unknown", "failure"): 135,
        ("system.auth", "ssh_possible_break_in", None): 85,
        ("system.auth", "ssh_no_identification", None): 10,
        ("system.auth", "pam_max_retries", "failure"): 7,
        ("system.auth", "ssh_too_many_authentication_failures", "failure"): 3,
        ("system.auth", "pam_session_opened", "success"): 1,
        ("system.auth", "pam_session_closed", "success"): 1,
        ("system.auth", None, None): 1,
    }


def test_failed_password_for_an_invalid_user() -> None:
    event = syslog(
        "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 "
        "port 38926 ssh2"
    )
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["info"]
    assert event["user"] == {"name": "webmaster"}
    assert event["source"] == {"address": "173.234.31.186", "ip": "173.234.31.186", "port": 38926}
    assert event["system"]["auth"]["ssh"] == {"event": "Invalid", "method": "password"}


def test_accepted_publickey_from_ipv6_with_the_key_after_it() -> None:
    event = syslog(
        "Jan  2 03:04:05 h sshd-session[9]: Accepted publickey for alice from 2001:db8::1 port 50000 ssh2: "
        "ED25519 SHA256:x"
    )
    assert summary(event) == ("system.auth", "ssh_login", "success")
    assert event["user"] == {"name": "alice"}
    assert event["source"] == {"address": "2001:db8::1", "ip": "2001:db8::1", "port": 50000}
    assert event["system"]["auth"]["ssh"] == {"event": "Accepted", "method": "publickey"}


def test_newer_openssh_invalid_user_and_disconnect_lines_carry_the_port() -> None:
    invalid = syslog("Jan  2 03:04:05 h sshd[9]: Invalid user admin from 10.0.0.5 port 40000")
    assert invalid["source"] == {"address": "10.0.0.5", "ip": "10.0.0.5", "port": 40000}
    closed = syslog(
        "Jan  2 03:04:05 h sshd[9]: Connection closed by authenticating user root 10.0.0.5 port 40000 [preauth]"
    )
    assert summary(closed) == ("system.auth", "ssh_disconnect", None)
    assert closed["user"] == {"name": "root"}
    assert closed["source"] == {"address": "10.0.0.5", "ip": "10.0.0.5", "port": 40000}
    assert closed["event"]["type"] == ["connection", "end"]


def test_reverse_mapping_failure_gives_the_claimed_name_and_the_address() -> None:
    event = syslog(
        "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com "
        "[173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!"
    )
    assert event["event"]["action"] == "ssh_possible_break_in"
    assert event["source"] == {"address": "173.234.31.186", "ip": "173.234.31.186", "domain": "ns.marryaldkfaczcz.com"}


def test_an_address_that_is_not_an_ip_stays_out_of_source_ip() -> None:
    event = syslog("Jan  2 03:04:05 h sshd[9]: Connection closed by UNKNOWN port 65535")
    assert event["source"] == {"address": "UNKNOWN"}
