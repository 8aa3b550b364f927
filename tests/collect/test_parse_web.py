"""parse_web: access logs (real server and scanner traffic), Apache 2.2/2.4 and nginx error logs."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import pytest

from secmon.collect.transforms.parse_web import parse_apache_access, parse_apache_error, parse_nginx_error
from secmon.events import PARSE_FAILURE_TAG, Event, get_field
from secmon.store import source_json

LOGS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "logs"
RECEIVED = datetime.fromisoformat("2024-06-01T00:00:00+00:00").timestamp()
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z")


def read_lines(name: str) -> list[str]:
    """The file's lines as the file source hands them over: split at \\n, without \\r, empty ones skipped."""
    text = (LOGS / name).read_text(encoding="utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def failed(event: Event) -> bool:
    return PARSE_FAILURE_TAG in event.get("tags", [])


# -- access logs -----------------------------------------------------------------------------------


def test_combined_format_line() -> None:
    line = (
        '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/'
        'kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" '
        '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 '
        'Safari/537.36"'
    )
    assert read_lines("apache_access_elastic-examples.log")[0] == line
    event = parse_apache_access(line)
    assert event == {
        "@timestamp": "2015-05-17T10:05:03Z",
        "message": line,
        "event": {
            "original": line,
            "dataset": "apache.access",
            "category": ["web"],
            "type": ["access"],
            "outcome": "success",
        },
        "source": {"address": "83.149.9.216", "ip": "83.149.9.216"},
        "url": {
            "original": "/presentations/logstash-monitorama-2013/images/kibana-search.png",
            "path": "/presentations/logstash-monitorama-2013/images/kibana-search.png",
        },
        "http": {
            "version": "1.1",
            "request": {"method": "GET", "referrer": "http://semicomplete.com/presentations/logstash-monitorama-2013/"},
            "response": {"status_code": 200, "body": {"bytes": 203023}},
        },
        "user_agent": {
            "original": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/32.0.1700.77 Safari/537.36"
        },
    }


def test_common_format_with_user_query_offset_and_no_body() -> None:
    event = parse_apache_access(
        '192.0.2.7 - frank [10/Oct/2000:13:55:36 -0700] "POST /login?next=%2Fadmin&x= HTTP/1.0" 401 -'
    )
    assert event["@timestamp"] == "2000-10-10T20:55:36Z"
    assert event["user"] == {"name": "frank"}
    assert event["url"] == {"original": "/login?next=%2Fadmin&x=", "path": "/login", "query": "next=%2Fadmin&x="}
    assert event["http"] == {"version": "1.0", "request": {"method": "POST"}, "response": {"status_code": 401}}
    assert event["event"]["outcome"] == "failure"
    assert "user_agent" not in event
    assert not failed(event)


def test_an_empty_query_is_kept_as_an_empty_string() -> None:
    assert parse_apache_access('h - - [10/Oct/2000:13:55:36 +0000] "GET /a? HTTP/1.1" 200 1')["url"]["query"] == ""


def test_a_host_name_client_goes_to_source_domain_and_dashes_are_absent() -> None:
    event = parse_apache_access('crawler.example.net - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 304 - "-" "-"')
    assert event["source"] == {"address": "crawler.example.net", "domain": "crawler.example.net"}
    assert "referrer" not in event["http"]["request"]
    assert "body" not in event["http"]["response"]
    assert "user_agent" not in event


def test_absolute_form_request_to_a_proxy() -> None:
    event = parse_apache_access(
        '::1 - - [10/Oct/2000:13:55:36 +0000] "GET http://example.org:8080/p?q=1 HTTP/1.1" 200 5'
    )
    assert event["source"] == {"address": "::1", "ip": "::1"}
    assert event["url"] == {
        "original": "http://example.org:8080/p?q=1",
        "scheme": "http",
        "domain": "example.org",
        "port": 8080,
        "path": "/p",
        "query": "q=1",
    }


def test_a_request_line_that_is_no_request_is_kept_in_the_message_only() -> None:
    line = r'203.0.113.5 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03\x01\x02" 400 226 "-" "-"'
    event = parse_apache_access(line)
    assert "url" not in event
    assert "method" not in event["http"].get("request", {})
    assert event["http"]["response"]["status_code"] == 400
    assert not failed(event)


def test_escaped_quotes_in_the_referrer_a_shellshock_probe() -> None:
    lines = read_lines("webscan_netsparker_access.log")
    event = parse_apache_access(lines[1724])
    assert event["http"]["request"]["referrer"] == r"() { :;}; echo \"NS:\" $(/bin/sh -c \"expr 268409241 - 2\")"
    assert event["user_agent"]["original"].startswith("Mozilla/5.0 (Windows NT 6.3")
    assert not failed(event)


def test_lines_wrapped_in_one_more_pair_of_quotes_parse_as_the_bare_line() -> None:
    # w3af's file has both: wrapped lines first, then (from line 3935) bare ones.
    lines = read_lines("webscan_w3af_access.log")
    wrapped, bare = lines[0], lines[-1]
    assert wrapped.startswith('"192.168.4.163 ') and wrapped.endswith('"w3af.org""')
    assert bare.startswith("192.168.1.20 ")
    unwrapped = parse_apache_access(wrapped[1:-1])
    as_wrapped = parse_apache_access(wrapped)
    assert as_wrapped["event"]["original"] == wrapped
    as_wrapped["event"]["original"] = unwrapped["event"]["original"]
    assert as_wrapped == unwrapped
    assert as_wrapped["user_agent"] == {"original": "w3af.org"}
    assert not failed(parse_apache_access(bare))


def test_a_line_cut_short_keeps_what_it_has_and_is_tagged() -> None:
    line = read_lines("apache_access_elastic-examples.log")[8898]  # the upstream file's only broken line
    assert line.endswith('"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html')
    event = parse_apache_access(line)
    assert failed(event)
    assert event["error"]["message"] == (
        "access log line is malformed after the byte count (cut short, or a quote missing)"
    )
    assert event["http"]["response"]["status_code"] == 200
    assert event["url"]["path"] == "/scripts/grok-py-test/configlib.py"
    assert event["@timestamp"] == "2015-05-20T12:05:17Z"


def test_fields_after_the_user_agent_are_allowed() -> None:
    event = parse_apache_access(
        '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" "10.0.0.1" 0.003'
    )
    assert event["user_agent"] == {"original": "curl/8"}
    assert not failed(event)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "not an access log line in the common or combined format"),
        ("hello world", "not an access log line in the common or combined format"),
        (
            '1.2.3.4 - - [32/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5',
            "access log time [32/Oct/2000:13:55:36 +0000]",
        ),
        ('1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 5', "access log time [yesterday] is not"),
    ],
)
def test_what_is_not_an_access_line_says_why(line: str, reason: str) -> None:
    event = parse_apache_access(line, received=RECEIVED)
    assert failed(event)
    assert event["error"]["message"].startswith(reason)
    assert event["@timestamp"] == "2024-06-01T00:00:00Z"
    assert event["event"]["original"] == line


@pytest.mark.parametrize(
    "name", ["apache_access_elastic-examples.log", "webscan_netsparker_access.log", "webscan_w3af_access.log"]
)
def test_every_access_line_has_consistent_fields(name: str) -> None:
    for line in read_lines(name):
        event = parse_apache_access(line)
        assert ISO_UTC.fullmatch(event["@timestamp"]), line
        status = get_field(event, "http.response.status_code")
        assert 100 <= status <= 599, line
        assert event["event"]["outcome"] == ("failure" if status >= 400 else "success"), line
        assert get_field(event, "source.ip") is not None, line
        assert get_field(event, "url.path", "/").startswith("/"), line
        assert re.fullmatch(r"[A-Z]+", get_field(event, "http.request.method")), line  # scanners invent some


# -- Apache error log ------------------------------------------------------------------------------


def test_every_apache_2_2_line_matches_loghubs_time_level_and_content() -> None:
    with (LOGS / "loghub_Apache_2k.structured.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = read_lines("loghub_Apache_2k.log")
    assert len(lines) == len(rows) == 2000
    clients = 0
    for line, row in zip(lines, rows, strict=True):
        event = parse_apache_error(line)
        assert not failed(event), line
        assert event["event"]["dataset"] == "apache.error"
        assert event["log"]["level"] == row["Level"], line
        assert event["@timestamp"] == datetime.strptime(row["Time"], "%a %b %d %H:%M:%S %Y").isoformat() + "Z", line
        # loghub keeps "[client 1.2.3.4] " in Content; here it is source.ip, and the message is what follows.
        client = re.match(r"\[client ([^\]]+)\] ", row["Content"])
        if client:
            clients += 1
            assert event["source"]["ip"] == client.group(1), line
            assert event["message"] == row["Content"][client.end() :], line
        else:
            assert "source" not in event, line
            assert event["message"] == row["Content"], line
    assert clients == 32


def test_apache_2_4_error_line() -> None:
    event = parse_apache_error(
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:50000] "
        "AH00124: Request exceeded the limit of 10 internal redirects, referer: http://example.org/a"
    )
    assert event["@timestamp"] == "2000-10-11T14:32:52.123456Z"
    assert event["log"] == {"level": "error"}
    assert event["apache"] == {"error": {"module": "core"}}
    assert event["process"] == {"pid": 35708, "thread": {"id": 4328636416}}
    assert event["source"] == {"address": "72.15.99.187", "ip": "72.15.99.187", "port": 50000}
    assert event["http"] == {"request": {"referrer": "http://example.org/a"}}
    assert event["message"] == "AH00124: Request exceeded the limit of 10 internal redirects"


def test_apache_2_4_client_after_an_os_error_and_over_ipv6() -> None:
    event = parse_apache_error(
        "[Wed Oct 11 14:32:52 2000] [proxy:error] [pid 1] (111)Connection refused: [client ::1:5000] AH00957: x"
    )
    assert event["source"] == {"address": "::1", "ip": "::1", "port": 5000}
    assert event["message"] == "(111)Connection refused: [client ::1:5000] AH00957: x"


def test_apache_error_line_that_is_not_one() -> None:
    event = parse_apache_error("[Sun Dec 04 04:47:44 2005] notice: no brackets", received=RECEIVED)
    assert failed(event)
    assert event["error"]["message"].startswith("not an Apache error log line")
    assert event["@timestamp"] == "2024-06-01T00:00:00Z"


# -- nginx error log -------------------------------------------------------------------------------


def test_nginx_error_line() -> None:
    line = (
        '2024/01/02 03:04:05 [error] 123#7: *4 open() "/srv/www/.env" failed (2: No such file or directory), '
        'client: 203.0.113.9, server: example.org, request: "GET /.env?x=1 HTTP/1.1", host: "example.org"'
    )
    event = parse_nginx_error(line)
    assert event["@timestamp"] == "2024-01-02T03:04:05Z"
    assert event["event"] == {"original": line, "dataset": "nginx.error"}
    assert event["log"] == {"level": "error"}
    assert event["process"] == {"pid": 123, "thread": {"id": 7}}
    assert event["nginx"] == {"error": {"connection_id": 4}}
    assert event["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9"}
    assert event["http"] == {"version": "1.1", "request": {"method": "GET"}}
    assert event["url"] == {"original": "/.env?x=1", "path": "/.env", "query": "x=1", "domain": "example.org"}
    assert event["message"] == line[line.index("open()") :]


def test_nginx_error_without_connection_or_client() -> None:
    event = parse_nginx_error("2024/01/02 03:04:05 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address in use)")
    assert event["log"] == {"level": "emerg"}
    assert "nginx" not in event
    assert "source" not in event
    assert event["message"] == "bind() to 0.0.0.0:80 failed (98: Address in use)"


def test_nginx_error_with_an_impossible_date_is_tagged() -> None:
    event = parse_nginx_error("2024/02/30 03:04:05 [error] 1#1: x", received=RECEIVED)
    assert failed(event)
    assert event["error"]["message"] == "nginx error log time '2024/02/30 03:04:05' is not a date"
    assert event["message"] == "x"


def test_an_apache_error_pid_too_long_for_a_number_is_left_out_not_raised() -> None:
    # int() of 5,000 digits raises; 30 digits made an event Elasticsearch (and orjson) cannot take.
    for digits in (30, 5000):
        line = f"[Wed Oct 11 14:32:52 2000] [core:error] [pid {'9' * digits}:tid 7] [client 1.2.3.4:5] AH00037: x"
        event = parse_apache_error(line)
        assert event["process"] == {"thread": {"id": 7}}
        assert event["source"]["ip"] == "1.2.3.4"
        source_json(event)  # storable
