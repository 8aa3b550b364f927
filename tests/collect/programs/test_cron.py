"""cron: the commands it runs."""

from __future__ import annotations

from tests.collect.programs.support import summary, syslog


def test_cron_command_stays_syslog_but_its_pam_session_is_auth() -> None:
    command = syslog("Jan  2 03:17:01 h CRON[77]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)")
    assert summary(command) == ("syslog", "cron_command", None)
    assert command["user"] == {"name": "root"}
    assert command["process"] == {
        "name": "CRON",
        "pid": 77,
        "command_line": "   cd / && run-parts --report /etc/cron.hourly",
    }
    session = syslog(
        "Jan  2 03:17:01 h CRON[77]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
    )
    assert summary(session) == ("system.auth", "pam_session_opened", "success")
    assert session["user"] == {"name": "root"}
