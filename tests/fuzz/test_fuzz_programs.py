"""What programs say in syslog (sshd, sudo, cron, firewalls) and in auditd records: their fields come back."""

from __future__ import annotations

from hypothesis import example, given

from secmon.bench.fuzz.cases import Case, auditd_case, cron_case, iptables_case, sshd_case, sudo_case
from secmon.bench.fuzz.targets import check_line, check_line_event, parse_line
from tests.fuzz.drawing import cases, damaged_text, examples, received_bytes

SSHD_LINE = (
    "Feb 10 06:37:45 LabSZ sshd[24206]: Failed password for invalid user test9 from 52.80.34.196 port 36060 ssh2"
)


@examples(60)
@given(case=cases(sshd_case))
@example(  # a line of loghub's OpenSSH log, the fields read off it by hand
    case=Case(
        SSHD_LINE,
        {
            "event.action": "ssh_login",
            "event.outcome": "failure",
            "user.name": "test9",
            "source.ip": "52.80.34.196",
            "source.port": 36060,
            "system.auth.ssh.event": "Invalid",
            "system.auth.ssh.method": "password",
            "process.pid": 24206,
        },
    )
)
def test_an_sshd_login_gives_back_user_address_port_and_outcome(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(40)
@given(case=cases(sudo_case))
def test_a_sudo_command_gives_back_who_as_whom_where_and_what(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(40)
@given(case=cases(cron_case))
def test_a_cron_job_gives_back_its_user_and_command(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(40)
@given(case=cases(iptables_case))
def test_a_firewall_log_gives_back_addresses_ports_interface_and_action(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(40)
@given(case=cases(auditd_case))
def test_an_audit_record_gives_back_its_time_serial_process_user_and_address(case: Case[str]) -> None:
    check_line(case, "auditd")


@examples(100)
@given(line=damaged_text(sshd_case, sudo_case, cron_case, iptables_case))
def test_a_damaged_program_message_is_kept_and_storable(line: str) -> None:
    check_line_event(line, "syslog", parse_line(line, "syslog"))


@examples(100)
@given(line=damaged_text(auditd_case) | received_bytes())
def test_a_damaged_audit_record_is_kept_and_says_why_when_not_read(line: str) -> None:
    check_line_event(line, "auditd", parse_line(line, "auditd"))
