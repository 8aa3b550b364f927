"""parse_syslog: RFC 5424 and RFC 3164 by their own examples, and loghub's Linux and OpenSSH logs line by line."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from secmon.collect.transforms.parse_syslog import parse_syslog
from secmon.events import PARSE_FAILURE_TAG, Event, get_field

LOGS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "logs"


def read_lines(name: str) -> list[str]:
    """The file's lines as the file source hands them over: split at \\n, without \\r, empty ones skipped."""
    text = (LOGS / name).read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def failed(event: Event) -> bool:
    return PARSE_FAILURE_TAG in event.get("tags", [])


# -- RFC 5424, section 6.5 examples ------------------------------------------------------------


def test_rfc5424_example_1_with_nil_structured_data_and_a_bom() -> None:
    line = (
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick on "
        "/dev/pts/8"
    )
    event = parse_syslog(line)
    assert event["@timestamp"] == "2003-10-11T22:14:15.003Z"
    assert event["log"]["syslog"] == {
        "priority": 34,
        "facility": {"code": 4, "name": "auth"},
        "severity": {"code": 2, "name": "Critical"},
        "version": "1",
        "hostname": "mymachine.example.com",
        "appname": "su",
        "msgid": "ID47",
    }
    assert event["host"] == {"hostname": "mymachine.example.com"}
    assert event["process"] == {"name": "su"}
    assert event["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert event["event"] == {"original": line, "dataset": "syslog"}
    assert not failed(event)


def test_rfc5424_example_2_converts_the_offset_to_utc_and_keeps_microseconds() -> None:
    event = parse_syslog(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
    )
    assert event["@timestamp"] == "2003-08-24T12:14:15.000003Z"
    assert event["log"]["syslog"]["facility"] == {"code": 20, "name": "local4"}
    assert event["log"]["syslog"]["severity"] == {"code": 5, "name": "Notice"}
    assert event["log"]["syslog"]["procid"] == "8710"
    assert event["process"] == {"name": "myproc", "pid": 8710}
    assert "msgid" not in event["log"]["syslog"]
    assert event["message"] == "%% It's time to make the do-nuts."


def test_rfc5424_example_3_structured_data_then_message() -> None:
    event = parse_syslog(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        'eventSource="Application" eventID="1011"] \ufeffAn application event log entry...'
    )
    assert event["log"]["syslog"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
    }
    assert event["message"] == "An application event log entry..."
    assert not failed(event)


def test_rfc5424_example_4_two_elements_and_no_message() -> None:
    event = parse_syslog(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
    )
    assert event["log"]["syslog"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert event["message"] == ""
    assert not failed(event)


def test_rfc5424_param_values_unescape_quote_bracket_and_backslash_only() -> None:
    # Section 6.3.3: \" \] \\ are escapes; a backslash before anything else stays.
    event = parse_syslog(r'<13>1 2024-01-02T03:04:05Z h app - - [x@1 a="say \"hi\" \] \\ \n" b=""] m')
    assert event["log"]["syslog"]["structured_data"] == {"x@1": {"a": 'say "hi" ] \\ \\n', "b": ""}}
    assert event["message"] == "m"


def test_rfc5424_a_param_named_twice_keeps_both_values() -> None:
    event = parse_syslog('<13>1 2024-01-02T03:04:05Z h app - - [x@1 ip="1.2.3.4" ip="5.6.7.8" ip="9.9.9.9"] m')
    assert event["log"]["syslog"]["structured_data"] == {"x@1": {"ip": ["1.2.3.4", "5.6.7.8", "9.9.9.9"]}}


def test_rfc5424_all_nil_values_fall_back_to_the_time_received() -> None:
    event = parse_syslog("<14>1 - - - - - -", received=epoch("2024-05-06T07:08:09+00:00"))
    assert event["@timestamp"] == "2024-05-06T07:08:09Z"
    assert event["log"]["syslog"] == {
        "priority": 14,
        "facility": {"code": 1, "name": "user"},
        "severity": {"code": 6, "name": "Informational"},
        "version": "1",
    }
    assert "host" not in event
    assert "process" not in event
    assert event["message"] == ""
    assert not failed(event)


def test_rfc5424_non_numeric_procid_is_kept_but_is_no_pid() -> None:
    event = parse_syslog("<13>1 2024-01-02T03:04:05Z h app worker-7 - - m")
    assert event["log"]["syslog"]["procid"] == "worker-7"
    assert event["process"] == {"name": "app"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("<13>1 2024-13-45T03:04:05Z h app - - - m", "RFC 5424 timestamp '2024-13-45T03:04:05Z' is not RFC 3339"),
        ("<13>1 2024-01-02T03:04:05Z h app - - msg without structured data", "neither '-' nor [elements]"),
        ('<13>1 2024-01-02T03:04:05Z h app - - [x@1 a="unterminated] m', """malformed at '[x@1 a="unterminated] m'"""),
        ('<13>1 2024-01-02T03:04:05Z h app - - [x@1 a="1"]m', "structured data is malformed at 'm'"),
    ],
)
def test_rfc5424_malformed_parts_are_tagged_with_what_is_wrong(line: str, reason: str) -> None:
    event = parse_syslog(line, received=epoch("2024-05-06T07:08:09+00:00"))
    assert failed(event)
    assert reason in event["error"]["message"]
    assert event["event"]["original"] == line
    assert event["log"]["syslog"]["appname"] == "app"  # what could be read is kept
    assert event["@timestamp"]


# -- RFC 3164, section 5.4 examples, and the shapes files and rsyslog write ---------------------


def test_rfc3164_example_1() -> None:
    line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
    event = parse_syslog(line, received=epoch("2003-10-12T00:00:00+00:00"))
    assert event["@timestamp"] == "2003-10-11T22:14:15Z"
    assert event["log"]["syslog"] == {
        "priority": 34,
        "facility": {"code": 4, "name": "auth"},
        "severity": {"code": 2, "name": "Critical"},
        "hostname": "mymachine",
        "appname": "su",
    }
    assert event["process"] == {"name": "su"}
    assert event["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert not failed(event)


def test_rfc3164_example_2_has_no_tag() -> None:
    event = parse_syslog("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", received=epoch("2003-03-01T00:00:00+00:00"))
    assert event["@timestamp"] == "2003-02-05T17:32:18Z"
    assert event["host"] == {"hostname": "10.0.0.99"}
    assert "process" not in event
    assert event["message"] == "Use the BFG!"


def test_rfc3164_example_4_has_no_valid_timestamp_and_is_kept_whole() -> None:
    line = "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!"
    event = parse_syslog(line, received=epoch("2024-05-06T07:08:09+00:00"))
    assert failed(event)
    assert event["error"]["message"] == "syslog line has no RFC 3164 or RFC 5424 timestamp after its <PRI>"
    assert event["log"]["syslog"]["severity"] == {"code": 0, "name": "Emergency"}
    assert event["message"] == line[3:]
    assert event["@timestamp"] == "2024-05-06T07:08:09Z"


def test_a_line_without_hostname_starts_with_the_tag() -> None:
    event = parse_syslog("<38>Jan  2 03:04:05 sshd[77]: Server listening on :: port 22.")
    assert "host" not in event
    assert event["process"] == {"name": "sshd", "pid": 77}
    assert event["message"] == "Server listening on :: port 22."


def test_an_ipv6_address_as_hostname() -> None:
    event = parse_syslog("<38>Jan  2 03:04:05 2001:db8::7 sshd[77]: Server listening on :: port 22.")
    assert event["host"] == {"hostname": "2001:db8::7"}
    assert event["process"] == {"name": "sshd", "pid": 77}


def test_a_tag_with_a_non_numeric_pid_keeps_it_as_procid() -> None:
    event = parse_syslog("Jan  2 03:04:05 host app[main]: started")
    assert event["log"]["syslog"]["procid"] == "main"
    assert event["process"] == {"name": "app"}


@pytest.mark.parametrize(
    ("line", "timestamp"),
    [
        ("2024-01-02T03:04:05.123456+01:00 host prog[1]: m", "2024-01-02T02:04:05.123456Z"),
        ("<30>2024-01-02T03:04:05Z host prog[1]: m", "2024-01-02T03:04:05Z"),
        ("2024-01-02T03:04:05.5-0230 host prog[1]: m", "2024-01-02T05:34:05.500Z"),
        ("2024-01-02T03:04:05 host prog[1]: m", "2024-01-02T03:04:05Z"),  # no zone: UTC
        ("Jan  2 2023 03:04:05 host prog[1]: m", "2023-01-02T03:04:05Z"),  # a year given wins
        ("Jan  2 03:04:05.250 host prog[1]: m", "2024-01-02T03:04:05.250Z"),
    ],
)
def test_timestamps_rsyslog_and_others_write(line: str, timestamp: str) -> None:
    event = parse_syslog(line, received=epoch("2024-06-01T00:00:00+00:00"))
    assert event["@timestamp"] == timestamp
    assert event["process"] == {"name": "prog", "pid": 1}
    assert event["message"] == "m"
    assert not failed(event)


@pytest.mark.parametrize(
    ("line", "received", "timestamp"),
    [
        # Read just after New Year: December is last year's.
        ("Dec 31 23:59:58 h p: m", "2024-01-01T00:00:05+00:00", "2023-12-31T23:59:58Z"),
        # The sender's clock a few hours ahead: still this year.
        ("Jun  1 14:00:00 h p: m", "2024-06-01T12:00:00+00:00", "2024-06-01T14:00:00Z"),
        # More than a day ahead cannot be skew: last year.
        ("Jun  3 00:00:00 h p: m", "2024-06-01T12:00:00+00:00", "2023-06-03T00:00:00Z"),
        # 29 February read in a common year belongs to the leap year before.
        ("Feb 29 10:00:00 h p: m", "2025-03-01T00:00:00+00:00", "2024-02-29T10:00:00Z"),
    ],
)
def test_the_year_of_a_bsd_timestamp_comes_from_when_it_was_received(line: str, received: str, timestamp: str) -> None:
    assert parse_syslog(line, received=epoch(received))["@timestamp"] == timestamp


def test_without_received_the_year_comes_from_the_clock() -> None:
    two_days_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    line = f"{two_days_ago:%b} {two_days_ago.day:2d} {two_days_ago:%H:%M:%S} h p: m"
    assert parse_syslog(line)["@timestamp"] == two_days_ago.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "stamp",
    [
        "Feb 29 10:00:00",  # in neither 2026 nor 2025
        "Apr 31 10:00:00",
        "Jan  1 25:00:00",
    ],
)
def test_a_timestamp_that_is_no_date_is_tagged_and_the_rest_still_parsed(stamp: str) -> None:
    event = parse_syslog(f"{stamp} h p[1]: m", received=epoch("2026-03-01T00:00:00+00:00"))
    assert failed(event)
    assert event["error"]["message"] == f"syslog timestamp {stamp!r} is not a date"
    assert event["@timestamp"] == "2026-03-01T00:00:00Z"
    assert event["process"] == {"name": "p", "pid": 1}
    assert event["message"] == "m"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("<192>Jan  1 00:00:00 h p: m", "syslog <PRI> 192 is out of range (0-191)"),
        ("just some text", "not a syslog line"),
        ("", "not a syslog line"),
    ],
)
def test_lines_that_are_not_syslog_say_why(line: str, reason: str) -> None:
    event = parse_syslog(line, received=epoch("2026-03-01T00:00:00+00:00"))
    assert failed(event)
    assert event["error"]["message"].startswith(reason)
    assert event["event"] == {"original": line, "dataset": "syslog"}
    assert event["message"] == line.strip()
    assert event["@timestamp"] == "2026-03-01T00:00:00Z"


# -- loghub: every line against the reference parse ----------------------------------------------


def reference_rows(name: str) -> list[dict[str, str]]:
    with (LOGS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


MONTH_NUMBERS = {"Jun": 6, "Jul": 7, "Dec": 12}


def test_every_linux_line_matches_loghubs_component_pid_and_content() -> None:
    # In this CSV "Level" holds the hostname; "Content" is the message without surrounding spaces.
    lines, rows = read_lines("loghub_Linux_2k.log"), reference_rows("loghub_Linux_2k.structured.csv")
    assert len(lines) == len(rows) == 2000
    received = epoch("2005-12-31T00:00:00+00:00")  # the ftpd lines say the year: 2005
    for line, row in zip(lines, rows, strict=True):
        event = parse_syslog(line, received=received)
        assert not failed(event), line
        assert get_field(event, "host.hostname") == row["Level"], line
        assert get_field(event, "process.name") == row["Component"], line
        assert get_field(event, "process.pid") == (int(row["PID"]) if row["PID"] else None), line
        assert event["message"] == row["Content"], line
        month, day = MONTH_NUMBERS[row["Month"]], int(row["Date"])
        assert event["@timestamp"] == f"2005-{month:02d}-{day:02d}T{row['Time']}Z", line


def test_every_openssh_line_matches_loghubs_host_pid_and_content() -> None:
    # In this CSV "Component" holds the hostname (LabSZ), "Date" the month and "Day" the day.
    lines, rows = read_lines("loghub_OpenSSH_2k.log"), reference_rows("loghub_OpenSSH_2k.structured.csv")
    assert len(lines) == len(rows) == 2000
    received = epoch("2017-01-05T00:00:00+00:00")  # read in January: the December lines are 2016's
    for line, row in zip(lines, rows, strict=True):
        event = parse_syslog(line, received=received)
        assert not failed(event), line
        assert get_field(event, "host.hostname") == row["Component"], line
        assert get_field(event, "process.name") == "sshd", line
        assert get_field(event, "process.pid") == int(row["Pid"]), line
        assert event["message"] == row["Content"], line
        day = int(row["Day"])
        assert event["@timestamp"] == f"2016-{MONTH_NUMBERS[row['Date']]:02d}-{day:02d}T{row['Time']}Z", line


def test_event_original_is_the_line_unchanged_with_its_carriage_return() -> None:
    line = "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4 \r"
    event = parse_syslog(line)
    assert event["event"]["original"] == line
    assert event["message"] == "authentication failure; rhost=218.188.2.4"
