"""parse_programs: what sshd, PAM, sudo, su, login, CRON, auditd and the kernel firewall say, in ECS."""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from secmon.collect.transforms.parse_programs import enrich, parse_auditd
from secmon.collect.transforms.parse_syslog import parse_syslog
from secmon.events import PARSE_FAILURE_TAG, Event, get_field

LOGS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "logs"
RECEIVED = datetime.fromisoformat("2024-06-01T00:00:00+00:00").timestamp()


def read_lines(name: str) -> list[str]:
    """The file's lines as the file source hands them over: split at \\n, without \\r, empty ones skipped."""
    text = (LOGS / name).read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def reference_rows(name: str) -> list[dict[str, str]]:
    with (LOGS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def syslog(line: str) -> Event:
    return enrich(parse_syslog(line, received=RECEIVED))


def summary(event: Event) -> tuple[str | None, ...]:
    meta = event["event"]
    return meta.get("dataset"), meta.get("action"), meta.get("outcome")


# -- sshd and PAM, against loghub's reference templates ------------------------------------------

# What each of loghub's OpenSSH templates (by how it starts) must become: dataset, action, outcome.
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


def expected_for(template: str, table: Sequence[tuple[str, tuple[str | None, ...]]]) -> tuple[str | None, ...]:
    matches = [expected for start, expected in table if template.startswith(start)]
    assert len(matches) == 1, template
    return matches[0]


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


# -- sudo, su, login, CRON ------------------------------------------------------------------------


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


def test_login() -> None:
    root = syslog("Jan  2 03:04:05 h login[5]: ROOT LOGIN  on '/dev/tty1'")
    assert summary(root) == ("system.auth", "login", "success")
    assert root["user"] == {"name": "root"}
    failed = syslog("Jan  2 03:04:05 h login[5]: FAILED LOGIN (1) on '/dev/tty1' FOR 'UNKNOWN', Authentication failure")
    assert summary(failed) == ("system.auth", "login", "failure")
    assert failed["event"]["reason"] == "Authentication failure"


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


def test_unknown_programs_are_left_as_parsed() -> None:
    line = "Jun 17 07:07:00 combo ftpd[29504]: connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at x"
    assert syslog(line) == parse_syslog(line, received=RECEIVED)


# -- kernel firewall -------------------------------------------------------------------------------


def test_ufw_block() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: [ 5523.123456] [UFW BLOCK] IN=eth0 OUT= "
        "MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 "
        "SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=54321 DF PROTO=TCP SPT=51515 DPT=22 "
        "WINDOW=29200 RES=0x00 SYN URGP=0"
    )
    assert summary(event) == ("iptables", "block", None)
    assert event["event"]["category"] == ["network"]
    assert event["event"]["type"] == ["connection", "denied"]
    assert event["rule"] == {"name": "UFW BLOCK"}
    assert event["observer"] == {"ingress": {"interface": {"name": "eth0"}}}
    assert event["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9", "port": 51515, "mac": "52-54-00-AB-CD-EF"}
    assert event["destination"] == {"address": "192.0.2.10", "ip": "192.0.2.10", "port": 22, "mac": "52-54-00-12-34-56"}
    assert event["network"] == {"transport": "tcp", "type": "ipv4"}
    assert event["iptables"]["ttl"] == "49"
    assert event["iptables"]["flags"] == ["DF", "SYN"]


@pytest.mark.parametrize(
    ("prefix", "action", "types"),
    [
        ("[UFW ALLOW] ", "allow", ["connection", "allowed"]),
        ("[UFW AUDIT] ", "audit", ["connection"]),
        ("IPTABLES-DROPPED: ", "block", ["connection", "denied"]),
        ("nft accept in: ", "allow", ["connection", "allowed"]),
        ("FW-LOG ", None, ["connection"]),  # a prefix that does not say: no action
        ("", None, ["connection"]),
    ],
)
def test_firewall_action_comes_from_the_log_prefix(prefix: str, action: str | None, types: list[str]) -> None:
    event = syslog(
        f"Jan  2 03:04:05 h kernel: {prefix}IN=eth0 OUT=eth1 SRC=10.0.0.1 DST=10.0.0.2 LEN=52 PROTO=UDP SPT=5 DPT=53"
    )
    assert event["event"].get("action") == action
    assert event["event"]["type"] == types
    assert event["observer"]["egress"] == {"interface": {"name": "eth1"}}
    assert event["network"]["transport"] == "udp"


def test_icmp_error_quoting_another_packet_keeps_the_outer_addresses() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: DROP IN=eth0 OUT= SRC=198.51.100.1 DST=192.0.2.10 LEN=88 PROTO=ICMP TYPE=3 CODE=3 "
        "[SRC=192.0.2.10 DST=198.51.100.1 LEN=60 PROTO=UDP SPT=53 DPT=33434 ]"
    )
    assert event["source"]["ip"] == "198.51.100.1"
    assert event["destination"]["ip"] == "192.0.2.10"
    assert "port" not in event["source"]
    assert event["icmp"] == {"type": 3, "code": 3}
    assert event["network"]["transport"] == "icmp"


def test_a_firewall_address_that_is_no_ip_is_not_claimed_as_one() -> None:
    event = syslog("Jan  2 03:04:05 h kernel: DROP IN=eth0 OUT= SRC=999.1.1.1 DST=10.0.0.2 PROTO=TCP SPT=1 DPT=2")
    assert event["source"] == {"address": "999.1.1.1"}
    assert event["destination"] == {"address": "10.0.0.2", "ip": "10.0.0.2", "port": 2}


def test_ipv6_firewall_line() -> None:
    event = syslog(
        "Jan  2 03:04:05 h kernel: [UFW BLOCK] IN=eth0 OUT= SRC=2001:db8::5 DST=2001:db8::1 LEN=80 PROTO=TCP "
        "SPT=1 DPT=443"
    )
    assert event["network"] == {"transport": "tcp", "type": "ipv6"}
    assert event["destination"]["port"] == 443


def test_other_kernel_lines_are_left_alone() -> None:
    event = syslog("Jul 27 14:41:59 combo kernel: audit(1122475266.4294965305:0): initialized")
    assert summary(event) == ("syslog", None, None)


# -- auditd ---------------------------------------------------------------------------------------


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


def test_a_line_that_is_no_audit_record_is_tagged() -> None:
    event = parse_auditd("type=SYSCALL but nothing else", received=RECEIVED)
    assert event["tags"] == [PARSE_FAILURE_TAG]
    assert event["error"]["message"].startswith("not an auditd record")
    assert event["@timestamp"] == "2024-06-01T00:00:00Z"
    assert event["message"] == "type=SYSCALL but nothing else"
