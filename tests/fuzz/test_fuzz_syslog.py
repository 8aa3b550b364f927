"""Syslog lines under random input: any bytes make an event, RFC 5424 and RFC 3164 lines give back their fields.

The round trips carry the examples of the specifications as explicit examples: their expected
fields are written out by hand from RFC 5424 section 6.5 and RFC 3164 section 5.4, not by secmon.
tests/collect/test_normalize.py holds the hand-picked hostile lines.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given

from secmon.bench.fuzz.cases import RFC3164_EXAMPLES, RFC5424_EXAMPLES, Case, rfc3164_case, rfc5424_case
from secmon.bench.fuzz.targets import check_line, check_line_event, parse_line
from secmon.events import PARSE_FAILURE_TAG
from tests.fuzz.drawing import cases, damaged_text, examples, received_bytes


@examples(200)
@given(line=received_bytes())
@pytest.mark.parametrize("fmt", ["syslog", "auto"])
def test_any_bytes_become_an_event_that_keeps_them(fmt: str, line: str) -> None:
    event = parse_line(line, fmt)
    check_line_event(line, fmt, event)  # the line kept, dated, storable; a failure says why


@examples(100)
@given(case=cases(rfc5424_case))
@example(case=RFC5424_EXAMPLES[0])
@example(case=RFC5424_EXAMPLES[1])
@example(case=RFC5424_EXAMPLES[2])
@example(case=RFC5424_EXAMPLES[3])
def test_an_rfc5424_line_gives_back_its_header_structured_data_and_message(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(100)
@given(case=cases(rfc3164_case))
@example(case=RFC3164_EXAMPLES[0])
@example(case=RFC3164_EXAMPLES[1])
def test_an_rfc3164_line_gives_back_its_priority_date_host_tag_and_message(case: Case[str]) -> None:
    check_line(case, "syslog")


@examples(100)
@given(line=damaged_text(rfc5424_case, rfc3164_case))
def test_a_damaged_line_is_kept_whole_and_a_failure_says_what(line: str) -> None:
    event = parse_line(line, "syslog")
    check_line_event(line, "syslog", event)
    if PARSE_FAILURE_TAG in event.get("tags", ()):
        # What is wrong, named by its part of the line (the line itself is event.original).
        assert any(part in event["error"]["message"] for part in ("syslog", "RFC 5424", "PRI", "timestamp"))
