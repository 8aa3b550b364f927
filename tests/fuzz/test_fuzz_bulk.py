"""Elasticsearch ``_bulk`` bodies under random input.

The parser that splits a body into actions and documents accounts for every line, and a valid
body gives back each action's op, index, id and document. Through the source's own ``Intake``
(its real pipeline and disk buffer), every action gets one answer item, a refused one a 4xx and
a dead letter that names its line, and an accepted one a stored event with its fields.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import AsyncElasticsearch
from hypothesis import given
from hypothesis import strategies as st

from secmon.auth import ApiKey, KeyStore, Role
from secmon.bench.fuzz.cases import BulkCase, Case, bulk_case
from secmon.bench.fuzz.draw import Draw
from secmon.bench.fuzz.targets import check_bulk, check_bulk_case
from secmon.collect.buffer import DiskBuffer
from secmon.collect.sources.http.bulk import bulk_items, ingest_bulk
from secmon.collect.sources.http.intake import Intake
from secmon.collect.sources.settings import HttpSourceSettings
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.serving.problems import Problem
from secmon.store import IndexNames
from tests.fuzz.drawing import cases, damaged_text, examples, received_bytes

AGENCY = "fuzz-agency"
NAMES = IndexNames("fuzz")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each example makes its disk buffer (a function's tmp_path would be shared by all examples anyway)."""
    return tmp_path_factory.mktemp("bulk-fuzz")


def small_bulk_case(d: Draw) -> BulkCase:
    """A body of at most 5 actions: enough for every way two actions meet, and quick to draw."""
    return bulk_case(d, most_actions=5)


def bulk_bodies() -> st.SearchStrategy[str]:
    """Valid bodies with a few characters damaged, and any text at all."""
    return damaged_text(lambda d: Case(small_bulk_case(d).body)) | received_bytes()


@examples(80)
@given(body=bulk_bodies())
def test_every_line_of_any_body_is_an_action_or_its_document_and_refusals_say_why(body: str) -> None:
    check_bulk(body)


@examples(40)
@given(case=cases(small_bulk_case))
def test_a_valid_body_gives_back_each_actions_op_index_id_and_document(case: BulkCase) -> None:
    check_bulk_case(case)


@dataclass
class Ingested:
    answer: dict[str, Any]
    events: list[dict[str, Any]]  # the events buffered, in order
    dead_letters: list[dict[str, Any]]


async def ingest(body: str, keys: KeyStore, folder: Path) -> Ingested:
    """``body`` through the HTTP source's bulk handling, as an agency key sends it; what it buffered."""
    buffer = DiskBuffer(folder / "buffer")
    try:
        intake = Intake(Pipeline(NAMES, buffer, Telemetry()), keys, HttpSourceSettings(), "http")  # type: ignore[call-arg]
        key = ApiKey("key-id", "fuzz", Role.AGENCY, (AGENCY,), datetime.now(UTC))
        answer = await ingest_bulk(intake, body.encode(), "logs", key, "127.0.0.1:9")
        frames, _ = buffer.read(100_000, 1 << 30)
    finally:
        buffer.close()
    events, dead_letters = [], []
    for frame in frames:
        head, _, document = frame.partition(b"\n")
        index = orjson.loads(head)[0]
        (dead_letters if index == NAMES.deadletter else events).append(orjson.loads(document))
    return Ingested(answer, events, dead_letters)


@examples(50)
@given(body=bulk_bodies() | cases(small_bulk_case).map(lambda case: case.body))
def test_through_the_source_each_action_is_answered_stored_or_dead_lettered_with_its_line(
    es: AsyncElasticsearch, folder: Path, body: str
) -> None:
    keys = KeyStore(es, NAMES)  # for the source's construction only: the key is given, not looked up
    items = list(bulk_items(body.split("\n"), "logs"))
    with tempfile.TemporaryDirectory(dir=folder) as buffer_folder:
        try:
            result = asyncio.run(ingest(body, keys, Path(buffer_folder)))
        except Problem as problem:  # a body that cannot be read at all (binary, no action) is refused whole
            assert 400 <= problem.kind.status < 500
            assert problem.detail
            assert not items or "\x00" in body
            return

    answers = [next(iter(entry.values())) for entry in result.answer["items"]]
    assert len(answers) == len(items)
    assert result.answer["errors"] == any("error" in answer for answer in answers)
    refused = [(item, answer) for item, answer in zip(items, answers, strict=True) if "error" in answer]
    for _, answer in refused:
        assert 400 <= answer["status"] < 500
        assert answer["error"]["reason"]
    # A refused document (not a refused delete or update: those hold no event) is dead-lettered, with its line.
    lettered = [(item, answer) for item, answer in refused if item.op in ("index", "create")]
    assert [letter["deadletter"]["reason"] for letter in result.dead_letters] == [
        f"line {item.line}: {answer['error']['reason']}" for item, answer in lettered
    ]
    assert all(letter["organization"]["id"] == AGENCY for letter in result.dead_letters)
    assert len(result.events) == sum(answer["status"] == 201 for answer in answers)


@examples(20)
@given(case=cases(small_bulk_case))
def test_through_the_source_a_valid_body_stores_every_document_with_its_fields(
    es: AsyncElasticsearch, folder: Path, case: BulkCase
) -> None:
    with tempfile.TemporaryDirectory(dir=folder) as buffer_folder:
        result = asyncio.run(ingest(case.body, KeyStore(es, NAMES), Path(buffer_folder)))
    assert not result.answer["errors"]
    assert not result.dead_letters
    assert len(result.events) == len(case.items)
    for event, spec in zip(result.events, case.items, strict=True):
        assert {key: event[key] for key in spec.document} == spec.document
        assert event["organization"]["id"] == AGENCY
