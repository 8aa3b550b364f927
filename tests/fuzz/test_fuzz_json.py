"""JSON lines, Beats documents and EVTX records as JSON under random input.

Any text becomes an event that keeps it; what is not a JSON object (or nests deeper than an event
can be stored) is tagged with the reason; a JSON object comes back field for field.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.bench.fuzz.cases import Case, beats_case, json_line_case
from secmon.bench.fuzz.targets import check_line, check_line_event, parse_line
from secmon.events import PARSE_FAILURE_TAG
from tests.fuzz.drawing import cases, damaged_text, examples, received_bytes

JSON_FORMATS = ["json", "beats", "evtx"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@examples(150)
@given(line=received_bytes() | damaged_text(json_line_case, beats_case))
@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_any_text_becomes_an_event_and_what_is_no_object_says_so(fmt: str, line: str) -> None:
    event = parse_line(line, fmt)
    check_line_event(line, fmt, event)
    if PARSE_FAILURE_TAG in event.get("tags", ()) and fmt != "evtx":
        assert "JSON" in event["error"]["message"]
        assert event["message"] == line


@examples(100)
@given(value=json_values)
@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_any_json_value_becomes_a_storable_event(fmt: str, value: object) -> None:
    line = orjson.dumps(value).decode()
    check_line_event(line, fmt, parse_line(line, fmt))


@examples(100)
@given(case=cases(json_line_case))
def test_a_json_object_gives_back_every_field(case: Case[str]) -> None:
    check_line(case, "json")


@examples(60)
@given(case=cases(beats_case))
def test_a_filebeat_document_keeps_its_own_original_dataset_and_fields(case: Case[str]) -> None:
    check_line(case, "beats")
