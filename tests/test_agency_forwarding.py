"""A collector-only agency forwarding to a central secmon: the forwarder alone, then two real ``secmon up``.

The forwarder is first checked against a small ASGI server on 127.0.0.1 standing in for the
central (503, 429 with Retry-After, per-item answers). Then a central ``secmon up`` with an http
source and an agency ``secmon up`` with a file source and ``forward:`` run as processes; both
are killed mid-stream and started again, and every line must be stored exactly once, under the
agency of the key.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import AsyncElasticsearch
from starlette.types import Receive, Scope, Send

from secmon.auth import KeyStore, Role
from secmon.collect.sinks.forward import Forwarder
from secmon.config import ElasticsearchSettings, ForwardSettings
from secmon.serving import AsgiServer
from secmon.store import Document, IndexNames, Outcome
from tests.support.pipeline import count_stored, search_all
from tests.support.wait import until

OPENSSH = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "logs" / "loghub_OpenSSH_2k.log"


# -- the forwarder against a stand-in central ---------------------------------------------------


@dataclass
class StandIn:
    """An ASGI app answering each ``_bulk`` request with the next scripted answer, recording the requests."""

    answers: list[tuple[int, dict[str, str], Any]]
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        self.requests.append((f"{scope['path']}?{scope['query_string'].decode()}", headers, body))
        status, extra, content = self.answers.pop(0)
        if callable(content):
            content = content(gzip.decompress(body))
        payload = orjson.dumps(content)
        response_headers = [
            (b"content-type", b"application/json"),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    app = StandIn([])
    server = AsgiServer(app, "127.0.0.1:0", name="stand-in central")
    await server.start()
    assert server.address is not None
    try:
        yield app, f"http://127.0.0.1:{server.address[1]}"
    finally:
        await server.stop()


def bulk_answer(statuses: list[int]) -> Any:
    """An answer reporting ``statuses`` for the documents of the request, in order."""

    def answer(body: bytes) -> dict[str, Any]:
        lines = body.decode().splitlines()
        assert len(lines) == 2 * len(statuses)
        items = []
        for status, action in zip(statuses, lines[::2], strict=True):
            result: dict[str, Any] = {"_id": orjson.loads(action)["create"]["_id"], "status": status}
            if status >= 400:
                result["error"] = {"type": "security_exception", "reason": "not an agency of this API key"}
            items.append({"create": result})
        return {"took": 1, "errors": any(status >= 400 for status in statuses), "items": items}

    return answer


async def test_the_forwarder_retries_503_and_429_and_reports_each_document(
    stand_in: tuple[StandIn, str], tmp_path: Path
) -> None:
    app, url = stand_in
    app.answers = [
        (503, {}, {"detail": "keys cannot be checked"}),
        (429, {"Retry-After": "7"}, {"detail": "too many events"}),
        (200, {}, bulk_answer([201, 409, 403])),
    ]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = ForwardSettings(url=url, api_key="secmon_test", retry_initial=0.25)  # type: ignore[call-arg]
    docs = [Document("local-events-x", f"id-{n}", {"message": f"m{n}", "event": {"dataset": "x"}}) for n in range(3)]
    deadletter = tmp_path / "deadletter.ndjson"
    async with Forwarder(settings, deadletter, sleep=sleep) as forwarder:
        outcomes = await forwarder.write(docs)

    assert outcomes == [Outcome.STORED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED]
    assert len(app.requests) == 3
    assert 0.125 <= waits[0] <= 0.25  # backoff after the 503
    assert waits[1] == 7.0  # the 429's Retry-After
    target, headers, body = app.requests[0]
    assert target == "/_bulk?format=json"
    assert headers["authorization"] == "ApiKey secmon_test"
    assert headers["content-encoding"] == "gzip"
    lines = gzip.decompress(body).decode().splitlines()
    assert [orjson.loads(line) for line in lines[::2]] == [{"create": {"_id": f"id-{n}"}} for n in range(3)]
    assert [orjson.loads(line) for line in lines[1::2]] == [doc.source for doc in docs]
    assert {gzip.decompress(request[2]) for request in app.requests} == {gzip.decompress(body)}  # the same batch
    (kept,) = [orjson.loads(line) for line in deadletter.read_bytes().splitlines()]
    assert kept["deadletter"]["original"] == docs[2].source
    assert kept["deadletter"]["reason"] == "not an agency of this API key"


# -- two secmon up: a central and an agency, each killed mid-stream --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "secmon", "--config", str(config), "up"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


async def test_an_agency_forwards_every_line_exactly_once_through_kills_of_both_sides(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames, tmp_path: Path
) -> None:
    token = secrets.token_hex(3)
    agency, dataset = f"agency-{token}", f"test.forward_{token}"
    keys = KeyStore(es, names)
    await keys.ensure_index()
    _, secret = await keys.create(Role.AGENCY, agencies=[agency], name=f"agency {token}'s collector")
    lines = [f"{line} n={n}" for n, line in enumerate(OPENSSH.read_text().splitlines() * 2)]  # each distinct
    first, second = lines[: len(lines) // 2], lines[len(lines) // 2 :]
    log_file = tmp_path / "auth.log"
    log_file.write_text("".join(line + "\n" for line in first))

    port = free_port()
    es_url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    central = tmp_path / "central.yml"
    central.write_text(
        f"elasticsearch:\n  url: {es_url}\n  index_prefix: {names.prefix}\n"
        f"state_dir: {tmp_path / 'central'}\napi:\n  address: 127.0.0.1:0\nmetrics:\n  address: null\n"
        f"sources:\n  agencies:\n    type: http\n    address: 127.0.0.1:{port}\n"
    )
    agency_config = tmp_path / "agency.yml"
    agency_config.write_text(
        f"state_dir: {tmp_path / 'agency'}\nmetrics:\n  address: null\n"
        f"forward:\n  url: http://127.0.0.1:{port}\n  batch_size: 100\n  retry_initial: 0.05\n  retry_max: 0.5\n"
        f"sources:\n  auth:\n    type: file\n    include: [{log_file}]\n    start_at: beginning\n"
        f"    poll_interval: 0.05\n    dataset: {dataset}\n"
    )
    index = names.events(dataset)

    async def stored(minimum: int, what: str) -> None:
        await until(
            lambda: count_stored(es, index),
            lambda: f"{minimum} events stored {what} (logs in {tmp_path})",
            done=lambda count: count >= minimum,
            timeout=180,
        )

    key_env = {"SECMON_FORWARD__API_KEY": secret}  # the key comes from the environment, as with systemd
    processes = [start(central, tmp_path / "central.log"), start(agency_config, tmp_path / "agency.log", **key_env)]
    try:
        await stored(len(first) // 8, "before the central is killed")
        kill(processes[0])  # mid-stream, as far as the agency knows: its requests now fail
        with log_file.open("a") as handle:
            handle.writelines(line + "\n" for line in second)
        await asyncio.sleep(1)  # the agency reads on, into its buffer
        kill(processes[1])
        processes[1] = start(agency_config, tmp_path / "agency.log", **key_env)
        processes[0] = start(central, tmp_path / "central.log")
        await stored(len(lines), "after both restarted")
        await asyncio.sleep(2)  # a duplicate would show by now
        events = await search_all(es, index)
        assert sorted(event["event"]["original"] for event in events) == sorted(lines)  # type: ignore[index]
        assert {event["organization"]["id"] for event in events} == {agency}  # type: ignore[index]
        assert {event["event"]["dataset"] for event in events} == {dataset}  # type: ignore[index]
        sshd = [event for event in events if event.get("process", {}).get("name") == "sshd"]  # type: ignore[union-attr]
        assert sshd, "the agency's parsed fields are kept"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in processes]
    assert codes == [0, 0], f"exit codes {codes} (logs in {tmp_path})"
    assert "Forwarding events to the central secmon." in (tmp_path / "agency.log").read_text()
