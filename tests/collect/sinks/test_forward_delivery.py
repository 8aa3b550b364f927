"""The forwarder's delivery against a real HTTP server on 127.0.0.1 standing in for the central secmon."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import orjson
from pydantic import SecretStr

from secmon.collect.sinks.forward import Forwarder
from secmon.config import ForwardSettings
from secmon.store import Document, Outcome
from tests.collect.sinks.receiver import Receiver, Request, Response


def settings(url: str) -> ForwardSettings:
    return ForwardSettings(url=url, api_key=SecretStr("secmon_test"), retry_initial=0.05, retry_max=0.5)  # type: ignore[call-arg]


def docs(count: int) -> list[Document]:
    return [Document("local-events-x", f"id-{n}", {"message": f"m{n}"}) for n in range(count)]


def stored(request: Request) -> Response:
    """The central's answer storing every document of ``request``."""
    items = [{"create": {"_id": id, "status": 201}} for id in request.ids]
    return Response(200, orjson.dumps({"took": 1, "errors": False, "items": items}))


class SizeLimited:
    """A central that refuses requests of more than ``limit`` documents or ``max_line`` bytes a line with 413."""

    def __init__(self, limit: int, max_line: int = 1 << 20) -> None:
        self.limit = limit
        self.max_line = max_line

    async def __call__(self, request: Request) -> Response:
        lines = request.content.splitlines()
        if len(request.ids) > self.limit or max(map(len, lines)) > self.max_line:
            return Response(413, orjson.dumps({"detail": "request too large"}))
        return stored(request)


async def test_a_request_the_central_finds_too_large_is_halved_until_every_part_fits(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, url = receiver
    app.handler = SizeLimited(limit=2)
    sent = docs(7)
    async with Forwarder(settings(url), tmp_path / "deadletter.ndjson") as forwarder:
        outcomes = await forwarder.write(sent)

    assert outcomes == [Outcome.STORED] * 7
    refused = sorted(len(request.ids) for request, status in app.requests if status == 413)
    accepted = [request.ids for request, status in app.requests if status == 200]
    assert refused == [3, 4, 7]  # 7 → 3 + 4 → 1 + 2 + 2 + 2
    assert sorted(map(len, accepted)) == [1, 2, 2, 2]
    assert sorted(id for ids in accepted for id in ids) == sorted(doc.id for doc in sent)
    assert forwarder.stats.requests == len(app.requests) == 7
    assert not (tmp_path / "deadletter.ndjson").exists()


async def test_a_document_too_large_even_alone_is_dead_lettered_locally(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, url = receiver
    app.handler = SizeLimited(limit=100, max_line=1000)
    sent = docs(3)
    sent[1] = Document(sent[1].index, sent[1].id, {"message": "x" * 2000}, component="test.huge")
    deadletter = tmp_path / "deadletter.ndjson"
    async with Forwarder(settings(url), deadletter) as forwarder:
        outcomes = await forwarder.write(sent)

    assert outcomes == [Outcome.STORED, Outcome.DEAD_LETTERED, Outcome.STORED]
    (kept,) = [orjson.loads(line) for line in deadletter.read_bytes().splitlines()]
    assert kept["deadletter"]["error_type"] == "http_413"
    assert kept["deadletter"]["reason"] == "HTTP 413: request too large"
    assert kept["deadletter"]["component"] == "test.huge"
    assert kept["deadletter"]["original"] == sent[1].source
    assert forwarder.stats.by_component["test.huge"][Outcome.DEAD_LETTERED] == 1


async def test_retry_after_as_an_http_date_is_waited_out_and_a_huge_one_is_capped(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, url = receiver
    answers = [
        Response(503, b"{}", {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}),
        Response(429, b"{}", {"Retry-After": "86400"}),
    ]

    async def central(request: Request) -> Response:
        return answers.pop(0) if answers else stored(request)

    app.handler = central
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with Forwarder(settings(url), tmp_path / "deadletter.ndjson", sleep=sleep) as forwarder:
        outcomes = await forwarder.write(docs(2))

    assert outcomes == [Outcome.STORED] * 2
    assert 110 < waits[0] <= 120  # the date's seconds to come, less the time the request took
    assert waits[1] == 3600.0  # longer than an hour is taken as an hour
    assert [status for _, status in app.requests] == [503, 429, 200]


async def test_documents_the_central_asks_to_retry_are_sent_again_alone(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, url = receiver
    busy_once = {"id-1", "id-3"}

    async def central(request: Request) -> Response:
        items = []
        for id in request.ids:
            status = 429 if id in busy_once else 201
            busy_once.discard(id)
            items.append({"create": {"_id": id, "status": status}})
        return Response(200, orjson.dumps({"took": 1, "errors": True, "items": items}))

    app.handler = central
    async with Forwarder(settings(url), tmp_path / "deadletter.ndjson") as forwarder:
        outcomes = await forwarder.write(docs(4))

    assert outcomes == [Outcome.STORED] * 4
    assert [request.ids for request, _ in app.requests] == [["id-0", "id-1", "id-2", "id-3"], ["id-1", "id-3"]]
    assert forwarder.stats.retries == 1


async def test_this_instances_own_dead_letters_are_kept_locally_not_forwarded(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    app, url = receiver

    async def central(request: Request) -> Response:
        return stored(request)

    app.handler = central
    sent = docs(3)
    sent[0] = Document("local-deadletter", "own-letter", {"deadletter": {"reason": "x"}}, component="test.local")
    deadletter = tmp_path / "deadletter.ndjson"
    async with Forwarder(settings(url), deadletter, frozenset({"local-deadletter"})) as forwarder:
        outcomes = await forwarder.write(sent)

    assert outcomes == [Outcome.DEAD_LETTERED, Outcome.STORED, Outcome.STORED]
    assert [request.ids for request, _ in app.requests] == [["id-1", "id-2"]]
    (kept,) = [orjson.loads(line) for line in deadletter.read_bytes().splitlines()]
    assert (kept["deadletter"]["error_type"], kept["deadletter"]["reason"]) == ("local", "not an event to forward")
    assert forwarder.stats.by_component["test.local"][Outcome.DEAD_LETTERED] == 1
