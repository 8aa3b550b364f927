"""sudo: the command, who ran it as whom, and why it was refused."""

from __future__ import annotations

from tests.collect.programs.support import summary, syslog


def test_sudo_command() -> None:
    event = syslog(
        "Jan  2 03:04:05 h sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u"
    )
    assert summary(event) == ("system.auth", "sudo_command", "success")
    assert event["user"] == {"name": "alice", "effective": {"name": "root"}}
    assert event["process"]["command_line"] == "/usr/bin/id -u"
    assert event["process"]["working_directory"] == "/home/alice"
    assert event["system"]["auth"]["sudo"] == {
        "command": "/usr/bin/id -u",
        "tty": "pts/0",
        "pwd": "/home/alice",
        "user": "root",
    }


def test_sudo_failure_keeps_the_reason_and_a_command_holding_semicolons() -> None:
    event = syslog(
        "Jan  2 03:04:05 h sudo: mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; "
        "COMMAND=/bin/sh -c 'id ; cat /etc/shadow'"
    )
    assert summary(event) == ("system.auth", "sudo_command", "failure")
    assert event["event"]["reason"] == "user NOT in sudoers"
    assert event["process"]["command_line"] == "/bin/sh -c 'id ; cat /etc/shadow'"
    assert event["user"] == {"name": "mallory", "effective": {"name": "root"}}


def test_sudo_lines_of_other_shapes_are_auth_but_not_commands() -> None:
    event = syslog("Jan  2 03:04:05 h sudo: unable to resolve host h: Name or service not known")
    assert summary(event) == ("system.auth", None, None)
    assert "user" not in event
