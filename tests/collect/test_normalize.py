"""normalize: the entry point, format by format and "auto", on every dataset file and on hostile input."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from secmon.collect.transforms.normalize import TRANSFORMS, normalize
from secmon.events import PARSE_FAILURE_TAG, Event, Record

LOGS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "logs"
RECEIVED = datetime.fromisoformat("2024-06-01T00:00:00+00:00").timestamp()
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z")


def read_lines(name: str) -> list[str]:
    """The file's lines as the file source hands them over: split at \\n, without \\r, empty ones skipped."""
    text = (LOGS / name).read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def failed(event: Event) -> bool:
    return PARSE_FAILURE_TAG in event.get("tags", [])


def test_the_formats() -> None:
    assert set(TRANSFORMS) == {
        "syslog", "apache_access", "apache_error", "nginx_error", "auditd", "raw", "json", "beats", "evtx"
    }  # fmt: skip


# What "auto" makes of each dataset file: lines, lines tagged as not understood, and datasets.
DATASET_FILES = [
    # One line (8899) lost its closing quote upstream: the user agent is cut short.
    ("apache_access_elastic-examples.log", 10000, 1, {"apache.access": 10000}),
    ("webscan_netsparker_access.log", 7314, 0, {"apache.access": 7314}),
    ("webscan_w3af_access.log", 3996, 0, {"apache.access": 3996}),
    ("loghub_Apache_2k.log", 2000, 0, {"apache.error": 2000}),
    ("loghub_Linux_2k.log", 2000, 0, {"syslog": 1147, "system.auth": 853}),
    ("loghub_OpenSSH_2k.log", 2000, 0, {"system.auth": 2000}),
    # No parser for these two formats: every line is kept raw and tagged, as it should be.
    ("loghub_Proxifier_2k.log", 2000, 2000, {"raw": 2000}),
    ("loghub_Windows_2k.log", 2000, 2000, {"raw": 2000}),
]


@pytest.mark.parametrize(
    ("name", "lines", "failures", "datasets"), DATASET_FILES, ids=[row[0] for row in DATASET_FILES]
)
def test_parse_failure_rate_of_each_dataset_file(
    name: str, lines: int, failures: int, datasets: dict[str, int]
) -> None:
    events = [normalize(Record(line, received=RECEIVED)) for line in read_lines(name)]
    assert len(events) == lines
    assert sum(failed(event) for event in events) == failures
    assert Counter(event["event"]["dataset"] for event in events) == datasets


def test_the_files_no_parser_knows_say_so() -> None:
    for name in ("loghub_Proxifier_2k.log", "loghub_Windows_2k.log"):
        event = normalize(Record(read_lines(name)[0], received=RECEIVED))
        assert event["error"]["message"] == (
            "line matches no known log format (syslog, apache_access, apache_error, nginx_error, auditd)"
        )


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("loghub_OpenSSH_2k.log", "syslog"),
        ("loghub_Apache_2k.log", "apache_error"),
        ("webscan_w3af_access.log", "apache_access"),
        ("loghub_Windows_2k.log", "raw"),
    ],
)
def test_a_named_format_parses_its_file_like_auto_does(name: str, fmt: str) -> None:
    for line in read_lines(name):
        named = normalize(Record(line, received=RECEIVED), fmt)
        if fmt == "raw":
            assert not failed(named)
            assert named["message"] == line
            assert named["event"] == {"original": line, "dataset": "raw"}
        else:
            assert named == normalize(Record(line, received=RECEIVED)), line


@pytest.mark.parametrize(
    ("line", "dataset"),
    [
        ("<13>1 2024-01-02T03:04:05Z h app - - - m", "syslog"),
        ("<38>Jan  2 03:04:05 h sshd[1]: Invalid user x from 10.0.0.1", "system.auth"),
        ("2024-01-02T03:04:05+00:00 h kernel: [UFW BLOCK] IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP", "iptables"),
        ('"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "x""', "apache.access"),
        ("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1:tid 2] x", "apache.error"),
        ("2024/01/02 03:04:05 [warn] 1#1: x", "nginx.error"),
        ("type=SYSCALL msg=audit(1700000000.123:456): pid=1", "auditd"),
        ("node=h type=SYSCALL msg=audit(1700000000.123:456): pid=1", "auditd"),
    ],
)
def test_auto_tells_formats_apart_by_their_first_characters(line: str, dataset: str) -> None:
    event = normalize(Record(line, received=RECEIVED))
    assert event["event"]["dataset"] == dataset
    assert not failed(event)


def test_raw_keeps_the_line_and_tags_nothing() -> None:
    event = normalize(Record("anything at all  ", received=RECEIVED), "raw")
    assert event == {
        "@timestamp": "2024-06-01T00:00:00Z",
        "message": "anything at all  ",
        "event": {"original": "anything at all  ", "dataset": "raw"},
    }


def test_an_unknown_format_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown log format 'carrier-pigeon'"):
        normalize(Record("x"), "carrier-pigeon")


def test_a_record_without_a_receive_time_is_dated_now() -> None:
    before = time.time()
    event = normalize(Record("no date in here"), "raw")
    stamp = datetime.fromisoformat(event["@timestamp"]).timestamp()
    assert before - 1 <= stamp <= time.time() + 1


def test_origin_fills_what_the_event_lacks_and_never_overrides_it() -> None:
    origin: Event = {
        "source": {"ip": "192.0.2.1", "port": 514},  # the syslog sender
        "network": {"transport": "udp"},
        "log": {"source": {"address": "192.0.2.1:514"}},
        "tags": ["_secmon_truncated"],
        "event": {"dataset": "from-origin", "module": "syslog"},
    }
    line = "Jan  2 03:04:05 h sshd[1]: Failed password for root from 203.0.113.9 port 4242 ssh2"
    event = normalize(Record(line, origin=origin, received=RECEIVED))
    assert event["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9", "port": 4242}
    assert event["network"] == {"transport": "udp"}
    assert event["log"]["source"] == {"address": "192.0.2.1:514"}
    assert event["log"]["syslog"]["hostname"] == "h"
    assert event["event"]["dataset"] == "system.auth"
    assert event["event"]["module"] == "syslog"
    assert event["tags"] == ["_secmon_truncated"]


def test_origin_lists_join_the_events_and_origin_is_never_shared() -> None:
    origin: Event = {"tags": ["_secmon_truncated"], "log": {"file": {"path": "/var/log/x"}}}
    first = normalize(Record("???", origin=origin, received=RECEIVED))
    assert first["tags"] == [PARSE_FAILURE_TAG, "_secmon_truncated"]
    first["log"]["file"]["path"] = "changed"
    second = normalize(Record("raw line", origin=origin, received=RECEIVED), "raw")
    second["tags"].append("more")
    assert origin == {"tags": ["_secmon_truncated"], "log": {"file": {"path": "/var/log/x"}}}
    assert second["log"] == {"file": {"path": "/var/log/x"}}


# -- never raises ---------------------------------------------------------------------------------

HOSTILE = [
    "",
    " ",
    "\x00\x01\x02\x1b[31m\x7f",
    "\ud800 lone surrogate \udfff",
    "<",
    "<13>",
    "<13>1",
    "<13>1 ",
    "<13>1 - - - - - [",
    '<13>1 - - - - - [a b="',
    "Jan",
    "Jan  1 00:00:00",
    "type=",
    "[Mon ",
    '"',
    '""',
    "x" * 1_000_000,
    "Jan  1 00:00:00 h sshd[1]: Failed password for " + "a " * 300_000,
    '1.2.3.4 - - [01/Jan/2000:00:00:00 +0000] "' + '\\"' * 300_000,
    '<13>1 - - - - - [a b="' + '\\"' * 300_000,
    "type=X msg=audit(1.1:1): " + "a='" * 200_000,
    "Jan  1 00:00:00 h kernel: IN= OUT= " + "SRC=1.2.3.4 " * 80_000,
    "Jan  1 00:00:00 h sudo: a : " + "x ; " * 200_000,
]


def check_event(event: Event, line: str) -> None:
    assert event["event"]["original"] == line
    assert isinstance(event["event"]["dataset"], str)
    assert ISO_UTC.fullmatch(event["@timestamp"])


@pytest.mark.parametrize("fmt", ["auto", *TRANSFORMS])
def test_hostile_lines_never_raise_and_stay_fast(fmt: str) -> None:
    for line in HOSTILE:
        started = time.perf_counter()
        check_event(normalize(Record(line, received=RECEIVED), fmt), line)
        assert time.perf_counter() - started < 1.0, line[:40]  # linear regexes: no backtracking blow-up


def test_mangled_real_lines_never_raise() -> None:
    seeds = [line for name, *_ in DATASET_FILES for line in read_lines(name)[:200]]
    seeds += [
        '<165>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="q\\"b\\]c"][y@1 b="1"] \ufeffhi',
        "type=USER_LOGIN msg=audit(1700000000.5:9): pid=77 msg='op=login acct=\"root\" addr=1.2.3.4 res=failed'",
        "Jan  1 00:00:00 h kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=1.2.3.4",
        "Jan  1 00:00:00 h sudo:  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        '2024/01/02 03:04:05 [error] 1#0: *4 x, client: 1.2.3.4, request: "GET / HTTP/1.1", host: "h"',
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1:tid 2] [client 1.2.3.4:5] x",
    ]
    pieces = ['"', "\\", "[", "]", ":", " ", "=", "<", ">", "\x00", "\ud800", "\r", "\n", "\x1d", "\ufeff", "é", "9"]
    rng = random.Random(20240601)
    for _ in range(5000):
        line = rng.choice(seeds)
        cut = rng.randrange(len(line) + 1)
        mangled = [
            line[:cut],
            line[:cut] + rng.choice(pieces) * rng.randrange(1, 4) + line[cut:],
            line[: cut // 2] + line[cut:],
            "".join(rng.choice(pieces) for _ in range(rng.randrange(30))),
        ]
        for text in mangled:
            for fmt in ("auto", "syslog", "apache_access", "auditd"):
                check_event(normalize(Record(text, received=rng.choice([0.0, RECEIVED, 1e300, -1.0])), fmt), text)
