"""Web server logs under random input: access lines give back their fields; error logs and damage never break."""

from __future__ import annotations

from hypothesis import example, given

from secmon.bench.fuzz.cases import ABSENT, Case, apache_access_case
from secmon.bench.fuzz.targets import check_line, check_line_event, parse_line
from tests.fuzz.drawing import cases, damaged_text, examples, received_bytes

ERROR_LINES = (
    Case("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328] [client 1.2.3.4:5] AH00037: x"),
    Case('2024/01/02 03:04:05 [error] 123#0: *4 open() failed, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1"'),
)


@examples(80)
@given(case=cases(apache_access_case))
@example(  # the Apache documentation's example of the common log format
    case=Case(
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        {
            "source.ip": "127.0.0.1",
            "user.name": "frank",
            "@timestamp": "2000-10-10T20:55:36Z",
            "http.request.method": "GET",
            "url.path": "/apache_pb.gif",
            "http.version": "1.0",
            "http.response.status_code": 200,
            "http.response.body.bytes": 2326,
            "tags": ABSENT,
        },
    )
)
def test_an_access_line_gives_back_client_time_request_status_and_agent(case: Case[str]) -> None:
    check_line(case, "apache_access")
    check_line(case, "auto")  # auto tells it apart by its first characters


@examples(150)
@given(line=damaged_text(apache_access_case, lambda d: d.choice(ERROR_LINES)) | received_bytes())
def test_a_damaged_web_log_line_is_kept_and_storable_whichever_parser_auto_picks(line: str) -> None:
    for fmt in ("auto", "apache_error", "nginx_error"):
        check_line_event(line, fmt, parse_line(line, fmt))
