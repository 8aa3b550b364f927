"""PAM modules' messages, whichever program logged them, against loghub's Linux templates too."""

from __future__ import annotations

from tests.collect.programs.support import expected_for, read_lines, reference_rows, summary, syslog

LINUX_PAM_TEMPLATES = [
    ("authentication failure;", ("system.auth", "pam_authentication_failure", "failure")),
    ("check pass; user unknown", ("system.auth", "pam_user_unknown", "failure")),
    ("session opened for user", ("system.auth", "pam_session_opened", "success")),
    ("session closed for user", ("system.auth", "pam_session_closed", "success")),
]


def test_every_linux_line_old_style_pam_is_auth_and_the_rest_stays_syslog() -> None:
    lines, rows = read_lines("loghub_Linux_2k.log"), reference_rows("loghub_Linux_2k.structured.csv")
    for line, row in zip(lines, rows, strict=True):
        event = syslog(line)
        if row["Component"].endswith("(pam_unix)"):  # sshd(pam_unix), su(pam_unix), login(...), gdm(...)
            assert summary(event) == expected_for(row["EventTemplate"], LINUX_PAM_TEMPLATES), line
        else:  # ftpd, kernel, klogind...: programs this module does not know
            assert summary(event) == ("syslog", None, None), line


def test_pam_authentication_failure_with_a_host_name() -> None:
    event = syslog(
        "Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh "
        "ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root"
    )
    assert summary(event) == ("system.auth", "pam_authentication_failure", "failure")
    assert event["user"] == {"name": "root"}
    assert event["source"] == {
        "address": "220-135-151-1.hinet-ip.hinet.net",
        "domain": "220-135-151-1.hinet-ip.hinet.net",
    }


def test_pam_session_of_one_user_opened_by_another() -> None:
    sudo = syslog(
        "Jan  2 03:04:05 h sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"
    )
    assert sudo["user"] == {"name": "alice", "effective": {"name": "root"}}
    su = syslog("Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)")
    assert su["user"] == {"id": "0", "effective": {"name": "cyrus"}}
    ssh = syslog("Jan  2 03:04:05 h sshd[9]: pam_unix(sshd:session): session opened for user bob by (uid=0)")
    assert ssh["user"] == {"name": "bob"}
    assert ssh["event"]["category"] == ["session"]
    assert ssh["event"]["type"] == ["start"]
