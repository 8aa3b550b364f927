"""parse_auditd: one line of audit.log, in ECS."""

from __future__ import annotations

from datetime import datetime

from secmon.collect.transforms.parse_auditd import parse_auditd
from secmon.events import PARSE_FAILURE_TAG, Event

RECEIVED = datetime.fromisoformat("2024-06-01T00:00:00+00:00").timestamp()


def summary(event: Event) -> tuple[str | None, ...]:
    meta = event["event"]
    return meta.get("dataset"), meta.get("action"), meta.get("outcome")


def test_raw_auditd_syscall_record() -> None:
    line = (
        "type=SYSCALL msg=audit(1700000000.123:456): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 "
        'ppid=1000 pid=1234 auid=1000 uid=0 gid=0 euid=0 tty=pts0 ses=3 comm="id" exe="/usr/bin/id" key="exec"'
    )
    event = parse_auditd(line)
    assert event["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert summary(event) == ("auditd", "syscall", "success")
    assert event["event"]["sequence"] == 456
    assert event["process"] == {"pid": 1234, "parent": {"pid": 1000}, "name": "id", "executable": "/usr/bin/id"}
    assert event["user"] == {"id": "0", "effective": {"id": "0"}}
    log = event["auditd"]["log"]
    assert log["record_type"] == "SYSCALL"
    assert log["sequence"] == 456
    assert log["syscall"] == "59"
    assert log["key"] == "exec"
    assert event["event"]["original"] == line
    assert PARSE_FAILURE_TAG not in event.get("tags", [])


def test_auditd_execve_record_gives_the_arguments_and_command_line() -> None:
    # Arguments with a space are hex-encoded; a long one is split into pieces a<i>[0], a<i>[1].
    event = parse_auditd(
        'type=EXECVE msg=audit(1700000000.123:457): argc=4 a0="bash" a1="-c" a2=6563686F2068692074686572 '
        'a3_len=12 a3[0]="--long-" a3[1]="value"'
    )
    assert event["process"] == {
        "args": ["bash", "-c", "echo hi ther", "--long-value"],
        "args_count": 4,
        "command_line": "bash -c echo hi ther --long-value",
        "name": "bash",
    }
    assert event["event"]["type"] == ["start"]


def test_auditd_syscall_hex_arguments_stay_as_they_are_and_enriched_names_are_read() -> None:
    event = parse_auditd(
        "type=SYSCALL msg=audit(1700000000.123:458): arch=c000003e syscall=59 success=yes exit=0 a0=6162 "
        'pid=9 uid=1000 comm="id" exe="/usr/bin/id" UID="dana"'
    )
    assert event["auditd"]["log"]["a0"] == "6162"  # a syscall argument, not text
    assert event["user"]["name"] == "dana"


def test_auditd_user_record_reads_the_pairs_inside_msg() -> None:
    event = parse_auditd(
        "type=USER_LOGIN msg=audit(1700000000.5:9): pid=77 uid=0 auid=4294967295 ses=4294967295 "
        'msg=\'op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=198.51.100.7 terminal=sshd res=failed\''
    )
    assert summary(event) == ("auditd", "user_login", "failure")
    assert event["event"]["category"] == ["authentication"]
    assert event["user"] == {"id": "0", "name": "root"}  # auid 4294967295 means unset: not a user
    assert event["source"] == {"address": "198.51.100.7", "ip": "198.51.100.7"}
    assert event["auditd"]["log"]["op"] == "login"


def test_auditd_hex_encoded_fields_are_decoded() -> None:
    event = parse_auditd("type=PROCTITLE msg=audit(1700000000.000:10): proctitle=2F62696E2F7368002D630069642061")
    assert event["process"]["title"] == "/bin/sh -c id a"
    executable = parse_auditd('type=SYSCALL msg=audit(1700000000.000:11): pid=1 exe=2F746D702F6120622F78 comm="x"')
    assert executable["process"]["executable"] == "/tmp/a b/x"


def test_a_line_that_is_no_audit_record_is_tagged() -> None:
    event = parse_auditd("type=SYSCALL but nothing else", received=RECEIVED)
    assert event["tags"] == [PARSE_FAILURE_TAG]
    assert event["error"]["message"].startswith("not an auditd record")
    assert event["@timestamp"] == "2024-06-01T00:00:00Z"
    assert event["message"] == "type=SYSCALL but nothing else"
