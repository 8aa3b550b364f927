"""JSON events: generic lines, Beats documents (Winlogbeat normalized like EVTX), EVTX records."""

from __future__ import annotations

from pathlib import Path

import orjson

from secmon.collect.buffer import DiskBuffer
from secmon.collect.sources.evtx import read_evtx
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline, SourceContext
from secmon.collect.transforms.normalize import normalize
from secmon.collect.transforms.normalize_winlog import normalize_evtx
from secmon.events import PARSE_FAILURE_TAG, Record
from secmon.store import IndexNames, source_json

EVTX = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "evtx"

FILEBEAT_DOC = {
    "@timestamp": "2026-11-24T10:00:00.000Z",
    "message": "Nov 24 10:00:00 web1 sshd[1]: Accepted password for bob from 192.0.2.1 port 22 ssh2",
    "log": {"file": {"path": "/var/log/auth.log"}, "offset": 1234},
    "event": {"dataset": "system.auth", "original": "the line as the module saw it"},
    "host": {"name": "web1"},
    "agent": {"type": "filebeat", "version": "8.19.0"},
}


def test_a_json_line_is_kept_as_the_event_it_is() -> None:
    line = orjson.dumps({"user": {"name": "alice"}, "event": {"action": "login"}}).decode()
    event = normalize(Record(line, received=1_700_000_000.0), "json")
    assert event["user"] == {"name": "alice"}
    assert event["event"]["action"] == "login"
    assert event["event"]["dataset"] == "json"
    assert event["event"]["original"] == line
    assert event["@timestamp"].startswith("2023-11-14T22:13:20")


def test_auto_recognizes_json() -> None:
    assert normalize(Record('{"message": "hi"}'), "auto")["message"] == "hi"


def test_text_that_is_not_a_json_object_is_kept_and_tagged() -> None:
    for bad in ('{"truncated": ', "[1, 2]", "\x00\x01"):
        event = normalize(Record(bad), "json")
        assert PARSE_FAILURE_TAG in event["tags"]
        assert event["event"]["original"] == bad
        assert "JSON" in event["error"]["message"]


def test_a_filebeat_document_keeps_its_fields_and_its_own_original() -> None:
    event = normalize(Record(orjson.dumps(FILEBEAT_DOC).decode()), "beats")
    assert event["event"]["dataset"] == "system.auth"
    assert event["event"]["original"] == "the line as the module saw it"
    assert event["log"]["file"]["path"] == "/var/log/auth.log"
    assert event["agent"]["type"] == "filebeat"


def test_a_fluent_bit_record_has_its_log_line_as_message() -> None:
    event = normalize(Record('{"date": 1700000000.5, "log": "GET / 200"}'), "beats")
    assert event["message"] == "GET / 200"
    assert "log" not in event


def test_a_winlogbeat_document_and_the_same_evtx_record_normalize_alike() -> None:
    path = EVTX / "command-and-control" / "DE_RDP_Tunneling_4624.evtx"
    record = next(r for r in read_evtx(path) if r.event["System"]["EventID"] == 4624)
    from_evtx = normalize(Record(orjson.dumps(record.event).decode()), "evtx")
    assert from_evtx["winlog"] == normalize_evtx(record.event)["winlog"]
    winlog = from_evtx["winlog"]
    shipped = {
        "@timestamp": from_evtx["@timestamp"],
        "winlog": {
            "channel": winlog["channel"],
            "event_id": int(winlog["event_id"]),  # Winlogbeat sends a number
            "provider_name": winlog["provider_name"],
            "computer_name": winlog["computer_name"],
            "record_id": winlog["record_id"],
            "event_data": winlog["event_data"],
        },
    }
    from_beats = normalize(Record(orjson.dumps(shipped).decode()), "beats")
    assert from_beats["event"]["code"] == from_evtx["event"]["code"]
    assert from_beats["winlog"]["event_data"] == from_evtx["winlog"]["event_data"]
    assert from_beats["event"]["dataset"] == from_evtx["event"]["dataset"] == "windows.security"
    assert from_beats.get("user") == from_evtx.get("user")


def test_json_nested_deeper_than_an_event_can_be_stored_is_kept_as_text_and_says_so() -> None:
    # orjson reads 1,024 levels and writes 254: the event used to fail where it was stored, with its batch.
    line = '{"a":' * 300 + "1" + "}" * 300
    for fmt in ("json", "beats", "evtx"):
        event = normalize(Record(line), fmt)
        assert PARSE_FAILURE_TAG in event["tags"]
        assert event["error"]["message"] == "JSON nested more than 200 levels deep"
        assert event["message"] == line
        source_json(event)  # storable
    assert "tags" not in normalize(Record('{"a":' * 100 + "1" + "}" * 100), "json")


def test_tags_that_are_no_list_become_one_so_that_the_pipeline_takes_the_event(tmp_path: Path) -> None:
    # {"tags": 5} once made the pipeline raise for the whole batch the line came in.
    pipeline = Pipeline(IndexNames("t"), DiskBuffer(tmp_path), Telemetry())
    for tags, expected in ((5, [5]), ("web", ["web"]), (["a", "b"], ["a", "b"])):
        event = normalize(Record(orjson.dumps({"tags": tags, "event": {"dataset": 7}}).decode()), "beats")
        assert event["tags"] == [*expected, PARSE_FAILURE_TAG]
        assert pipeline.encode_events([event], [None], SourceContext("t", "beats"))  # no exception


def test_an_event_dataset_that_is_no_text_is_refused_as_a_data_stream_name_and_says_so() -> None:
    # It names the data stream the event goes to: a number or a list there once failed the pipeline.
    event = normalize(Record('{"event": {"dataset": ["a", "b"]}, "data_stream": {"dataset": "nginx.access"}}'), "json")
    assert event["event"]["dataset"] == "nginx.access"
    assert event["error"]["message"] == "event.dataset ['a', 'b'] is not text; stored as nginx.access"
    assert normalize(Record('{"event": {"dataset": 5}}'), "beats")["event"]["dataset"] == "json"
