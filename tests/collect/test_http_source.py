"""The HTTP source on a real server (127.0.0.1, port 0), into the real node through the pipeline.

The Elasticsearch-compatible side is checked the way shippers use it: a Filebeat-shaped bulk
request written by hand, and the official Elasticsearch client, which refuses any answer that
does not come from "Elasticsearch".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gzip
import resource
import secrets
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from secmon.auth import ApiKey, KeyStore, Role
from secmon.auth.keys import apikeys_index
from secmon.collect.sources.http import HttpSource
from secmon.collect.sources.settings import HttpSourceSettings
from secmon.collect.topology import Pipeline
from secmon.store import IndexNames
from tests.support.allocation import create_held
from tests.support.pipeline import running_pipeline, search_all

PRODUCT = "Elasticsearch"


@dataclass(frozen=True)
class Key:
    key: ApiKey
    secret: str

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.secret}"}

    @property
    def beats_header(self) -> dict[str, str]:
        """What Beats send for ``api_key: "<id>:<key>"``."""
        encoded = base64.b64encode(f"{self.key.id}:{self.secret}".encode()).decode()
        return {"Authorization": f"ApiKey {encoded}"}


@pytest.fixture(scope="module")
async def keys(es: AsyncElasticsearch, names: IndexNames) -> KeyStore:
    store = KeyStore(es, names)
    await store.ensure_index()
    return store


@pytest.fixture(scope="module")
async def agency_a(keys: KeyStore) -> Key:
    return Key(*await keys.create(Role.AGENCY, agencies=["agency-a"], name="agency a's shippers"))


@pytest.fixture(scope="module")
async def agencies_ab(keys: KeyStore) -> Key:
    return Key(*await keys.create(Role.AGENCY, agencies=["agency-a", "agency-b"], name="a shared collector"))


@dataclass
class Env:
    """What every test here uses: the node, the key store, a key of agency a, a folder."""

    es: AsyncElasticsearch
    names: IndexNames
    keys: KeyStore
    agency_a: Key
    tmp_path: Path

    async def events(self, served: Served) -> list[dict[str, Any]]:
        """The events ``served`` stored (the pipeline has drained by the time it is asked)."""
        return await search_all(self.es, self.names.events(served.dataset))

    async def dead_letters(self, served: Served) -> list[dict[str, Any]]:
        query: dict[str, object] = {"term": {"deadletter.component": served.component}}
        return await search_all(self.es, self.names.deadletter, query)


@pytest.fixture
def env(es: AsyncElasticsearch, names: IndexNames, keys: KeyStore, agency_a: Key, tmp_path: Path) -> Env:
    return Env(es, names, keys, agency_a, tmp_path)


@dataclass
class Served:
    source: HttpSource
    pipeline: Pipeline
    component: str
    dataset: str
    url: str
    http: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def serving(env: Env, **settings: Any) -> AsyncIterator[Served]:
    """A pipeline draining into the node and an HTTP source of its own (component, dataset) on 127.0.0.1.

    On exit the source stops and the pipeline drains, so what was accepted is then searchable.
    """
    token = secrets.token_hex(3)
    component, dataset = f"http-{token}", f"test.http_{token}"
    options = {"address": "127.0.0.1:0", "dataset": dataset, **settings}
    async with running_pipeline(env.es, env.names, env.tmp_path / "buffer") as pipeline:
        source = HttpSource(component, HttpSourceSettings(**options), pipeline, env.keys)
        await source.start()
        assert source.address is not None
        host, port = source.address
        try:
            async with aiohttp.ClientSession() as http:
                scheme = "https" if settings.get("tls_cert") else "http"
                yield Served(source, pipeline, component, dataset, f"{scheme}://{host}:{port}", http)
        finally:
            await source.stop()


def ndjson(*events: object) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


# -- NDJSON ----------------------------------------------------------------------------------


async def test_ndjson_with_a_bad_line_answers_207_stores_the_rest_and_dead_letters_it(env: Env) -> None:
    good = [{"message": f"login {n}", "user": {"name": f"u{n}"}} for n in range(4)]
    bad = '{"message": "cut short'
    body = ndjson(good[0], good[1]) + b"\n" + bad.encode() + b"\r\n" + ndjson(good[2], good[3])
    async with (
        serving(env) as served,
        served.http.post(f"{served.url}/ingest", data=body, headers=env.agency_a.header) as response,
    ):
        assert response.status == 207
        answer = await response.json()
    assert answer["accepted"] == 4
    assert [r["line"] for r in answer["rejected"]] == [4]  # the blank line 3 counts, and is skipped
    assert "not valid JSON" in answer["rejected"][0]["reason"]

    events = await env.events(served)
    assert sorted(e["event"]["original"] for e in events) == sorted(orjson.dumps(g).decode() for g in good)
    assert sorted(e["user"]["name"] for e in events) == ["u0", "u1", "u2", "u3"]
    assert {e["organization"]["id"] for e in events} == {"agency-a"}
    [letter] = await env.dead_letters(served)
    assert letter["deadletter"]["original"] == {"raw": bad}
    assert letter["deadletter"]["reason"].startswith("line 4: not valid JSON")
    assert letter["organization"]["id"] == "agency-a"


async def test_raw_text_lines_are_taken_as_they_are_in_the_format_the_path_names(env: Env) -> None:
    lines = [
        "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
        "not json at all, and that is fine for syslog",
    ]
    async with serving(env) as served:
        url = f"{served.url}/ingest/syslog"
        async with served.http.post(url, data="\n".join(lines), headers=env.agency_a.header) as response:
            assert response.status == 200
            assert await response.json() == {"accepted": 2, "rejected": []}
        async with served.http.post(f"{served.url}/ingest/klingon", data="x", headers=env.agency_a.header) as response:
            assert response.status == 404
            assert (await response.json())["type"] == "urn:secmon:problem:unknown-format"
    events = await env.events(served)
    assert sorted(e["event"]["original"] for e in events) == sorted(lines)
    assert {e["organization"]["id"] for e in events} == {"agency-a"}
    assert all(e["log"]["source"]["address"].startswith("127.0.0.1:") for e in events)  # the sender


async def test_an_agency_key_stores_only_as_its_own_agencies(env: Env, agencies_ab: Key) -> None:
    async with serving(env) as served:
        only_a = ndjson(
            {"message": "no agency named"},
            {"message": "names its own", "organization": {"id": "agency-a"}},
            {"message": "names another", "organization": {"id": "agency-b"}},
            {"message": "names another, dotted", "organization.id": "agency-b"},
        )
        async with served.http.post(f"{served.url}/ingest", data=only_a, headers=env.agency_a.header) as response:
            assert response.status == 207
            answer = await response.json()
        assert answer["accepted"] == 2
        assert [r["line"] for r in answer["rejected"]] == [3, 4]
        assert all("'agency-b' is not an agency of this API key" in r["reason"] for r in answer["rejected"])

        shared = ndjson({"message": "shared, unnamed"}, {"message": "shared, b", "organization": {"id": "agency-b"}})
        async with served.http.post(f"{served.url}/ingest", data=shared, headers=agencies_ab.header) as response:
            assert response.status == 200

        impostor = ndjson({"message": "b only", "organization": {"id": "agency-b"}})
        for path in ("/ingest", "/ingest/auto"):  # "auto" finds JSON too
            async with served.http.post(served.url + path, data=impostor, headers=env.agency_a.header) as response:
                assert response.status == 400  # nothing taken
                assert (await response.json())["accepted"] == 0
    events = await env.events(served)
    stored = {orjson.loads(e["event"]["original"])["message"]: e["organization"]["id"] for e in events}
    assert stored == {
        "no agency named": "agency-a",
        "names its own": "agency-a",
        "shared, unnamed": "agency-a",
        "shared, b": "agency-b",
    }
    letters = await env.dead_letters(served)
    assert len(letters) == 4
    assert {letter["organization"]["id"] for letter in letters} == {"agency-a"}


# -- Elasticsearch's bulk API ------------------------------------------------------------------


def filebeat_bulk(count: int) -> bytes:
    """A bulk request as Filebeat 8.19 sends it (data stream, create actions), written by hand."""
    lines: list[dict[str, Any]] = []
    for n in range(count):
        lines.append({"create": {"_index": "filebeat-8.19.0"}})
        lines.append(
            {
                "@timestamp": f"2026-11-24T10:00:{n:02d}.000Z",
                "message": f"Nov 24 10:00:{n:02d} web-1 sshd[4411]: Failed password for root from 203.0.113.7",
                "log": {"offset": 1200 + 97 * n, "file": {"path": "/var/log/auth.log", "device_id": "64768"}},
                "input": {"type": "filestream"},
                "ecs": {"version": "8.0.0"},
                "host": {"name": "web-1", "hostname": "web-1", "os": {"family": "debian", "name": "Debian GNU/Linux"}},
                "agent": {
                    "type": "filebeat",
                    "version": "8.19.0",
                    "name": "web-1",
                    "id": "1b8f0f9e-5d0a-4c55-9d1a-2f3f6f0e8c11",
                    "ephemeral_id": "6c4b3a5e-0c1f-4a8e-9f20-7d3c2b1a0e99",
                },
            }
        )
    return ndjson(*lines)


async def test_a_filebeat_bulk_request_is_answered_as_filebeat_expects_and_stored(env: Env) -> None:
    async with serving(env) as served:
        headers = {
            **env.agency_a.beats_header,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",  # Filebeat 8 compresses by default
            "Accept": "application/json",
            "User-Agent": "Go-http-client/1.1",
        }
        body = gzip.compress(filebeat_bulk(25), compresslevel=1)
        url = f"{served.url}/_bulk?filter_path=errors,items.*.error,items.*.status"
        async with served.http.post(url, data=body, headers=headers) as response:
            assert response.status == 200
            assert response.headers["X-Elastic-Product"] == PRODUCT
            raw = await response.read()
    answer = orjson.loads(raw)
    assert b'"errors":false' in raw  # Fluent Bit and Vector look for exactly this
    assert answer["errors"] is False and isinstance(answer["took"], int)
    assert len(answer["items"]) == 25
    for item in answer["items"]:
        result = item["create"]
        assert result["status"] == 201 and result["result"] == "created" and result["_version"] == 1
        assert result["_index"] == "filebeat-8.19.0" and result["_id"]
        assert result["_shards"] == {"total": 1, "successful": 1, "failed": 0} and result["_primary_term"] == 1
    assert len({item["create"]["_seq_no"] for item in answer["items"]}) == 25

    events = await env.events(served)
    assert len(events) == 25
    assert {e["organization"]["id"] for e in events} == {"agency-a"}
    assert {e["log"]["file"]["path"] for e in events} == {"/var/log/auth.log"}
    assert {(e["agent"]["type"], e["host"]["name"]) for e in events} == {("filebeat", "web-1")}
    assert sorted(e["@timestamp"] for e in events)[0] == "2026-11-24T10:00:00.000Z"


async def test_a_document_sent_again_with_its_id_is_stored_once(env: Env) -> None:
    """Fluent Bit with Generate_ID, say, retrying a request whose answer it lost."""
    body = ndjson(
        {"create": {"_index": "fluent-bit", "_id": "a1"}},
        {"@timestamp": "2026-11-24T10:00:00Z", "message": "first"},
        {"index": {"_index": "fluent-bit", "_id": "a2"}},
        {"@timestamp": "2026-11-24T10:00:01Z", "message": "second"},
    )
    async with serving(env) as served:
        headers = {**env.agency_a.header, "Content-Type": "application/x-ndjson", "User-Agent": "Fluent-Bit"}
        for _ in range(2):
            async with served.http.post(f"{served.url}/_bulk", data=body, headers=headers) as response:
                answer = await response.json()
            assert [(op, r["_id"], r["status"]) for item in answer["items"] for op, r in item.items()] == [
                ("create", "a1", 201),
                ("index", "a2", 201),
            ]
    assert len(await env.events(served)) == 2


async def test_malformed_and_unsupported_bulk_items_are_refused_one_by_one(env: Env) -> None:
    lines = [
        '{"create":{"_index":"logs"}}',
        '{"message":"first good"}',
        '{"create":{"_index":"logs"}}',
        '{"message": "broken',  # not JSON
        '{"delete":{"_index":"logs","_id":"x"}}',
        '{"update":{"_index":"logs","_id":"x"}}',
        '{"doc":{"message":"changed"}}',
        "this is not an action",
        '{"message":"its document"}',
        '{"create":{}}',
        '{"message":"as agency b","organization":{"id":"agency-b"}}',
        '{"index":{}}',
        '{"message":"second good"}',
    ]
    async with serving(env) as served:
        url = f"{served.url}/logs/_bulk"
        async with served.http.post(url, data="\n".join(lines) + "\n", headers=env.agency_a.header) as response:
            assert response.status == 200  # as Elasticsearch: item errors are in the body
            answer = await response.json()
    assert answer["errors"] is True
    outcomes = [(op, r["status"], r.get("error", {}).get("type")) for item in answer["items"] for op, r in item.items()]
    assert outcomes == [
        ("create", 201, None),
        ("create", 400, "mapper_parsing_exception"),
        ("delete", 400, "illegal_argument_exception"),
        ("update", 400, "illegal_argument_exception"),
        ("index", 400, "parse_exception"),
        ("create", 403, "security_exception"),
        ("index", 201, None),
    ]
    assert answer["items"][-1]["index"]["_index"] == "logs"  # from the path
    assert "not supported by secmon" in answer["items"][2]["delete"]["error"]["reason"]

    events = await env.events(served)
    assert sorted(orjson.loads(e["event"]["original"])["message"] for e in events) == ["first good", "second good"]
    letters = await env.dead_letters(served)
    reasons = sorted(letter["deadletter"]["reason"] for letter in letters)
    assert len(reasons) == 3
    assert reasons[0].startswith("line 10: organization.id 'agency-b'")
    assert reasons[1].startswith("line 3: not valid JSON")
    assert reasons[2].startswith("line 8: Malformed action/metadata line [8]")


async def test_a_document_too_deep_to_store_and_an_index_that_is_no_name_are_refused_one_by_one(env: Env) -> None:
    # Both once failed the whole request with a 500: orjson reads 1,024 levels but writes 254, and
    # str() of an _index nested a thousand deep overflowed the stack.
    lines = [
        '{"create":{}}',
        '{"message":"good"}',
        '{"create":{}}',
        '{"deep":' + "[" * 300 + "]" * 300 + "}",
        '{"create":{"_index":' + "[" * 1000 + "]" * 1000 + "}}",
        '{"message":"under an index that is a list"}',
    ]
    async with (
        serving(env) as served,
        served.http.post(
            f"{served.url}/logs/_bulk", data="\n".join(lines) + "\n", headers=env.agency_a.header
        ) as response,
    ):
        assert response.status == 200
        answer = await response.json()
    outcomes = [(r["status"], r.get("error", {}).get("reason")) for item in answer["items"] for r in item.values()]
    assert outcomes == [
        (201, None),
        (400, "JSON nested more than 200 levels deep"),
        (400, "Malformed action/metadata line [5], expected a simple value for field [_index]"),
    ]
    assert len(await env.events(served)) == 1
    reasons = sorted(letter["deadletter"]["reason"] for letter in await env.dead_letters(served))
    assert reasons == [
        "line 3: JSON nested more than 200 levels deep",
        "line 5: Malformed action/metadata line [5], expected a simple value for field [_index]",
    ]


async def test_the_elasticsearch_client_takes_secmon_for_elasticsearch(env: Env) -> None:
    async with serving(env) as served:
        client = AsyncElasticsearch(served.url, api_key=(env.agency_a.key.id, env.agency_a.secret))
        basic = AsyncElasticsearch(served.url, basic_auth=("vector", env.agency_a.secret))
        try:
            info = await client.info()  # raises UnsupportedProductError without the product header
            assert info["version"]["number"] == "8.19.21"
            assert info["version"]["build_flavor"] == "default"
            assert info["tagline"] == "You Know, for Search"
            assert await client.ping()
            assert (await basic.cluster.health())["status"] == "green"
            license_ = await client.license.get()
            assert license_["license"]["status"] == "active" and license_["license"]["type"] == "basic"
            answer = await client.bulk(
                operations=[{"create": {"_index": "logs-app-default"}}, {"message": "from the python client"}]
            )
            assert answer["errors"] is False
            assert answer["items"][0]["create"]["status"] == 201
        finally:
            await client.close()
            await basic.close()
    [event] = await env.events(served)
    assert orjson.loads(event["event"]["original"]) == {"message": "from the python client"}


async def test_the_set_up_calls_of_beats_and_vector_are_answered(env: Env) -> None:
    calls = [  # in the order Filebeat 8 makes them, then Vector's health check
        ("GET", "/", 200),
        ("GET", "/_license?human=false", 200),
        ("GET", "/_cat/templates/filebeat-8.19.0", 200),
        ("PUT", "/_index_template/filebeat-8.19.0", 200),
        ("GET", "/_index_template/filebeat-8.19.0", 200),
        ("GET", "/_ilm/policy/filebeat", 200),
        ("PUT", "/_ilm/policy/filebeat", 200),
        ("GET", "/_ingest/pipeline/filebeat-8.19.0-system-auth-pipeline", 200),
        ("PUT", "/_ingest/pipeline/filebeat-8.19.0-system-auth-pipeline", 200),
        ("HEAD", "/_template/filebeat-7.17.0", 200),
        ("GET", "/_xpack", 200),
        ("GET", "/_nodes/_local/http", 200),
        ("GET", "/_cluster/health", 200),
        ("GET", "/_search", 404),
    ]
    async with serving(env) as served:
        answers: dict[tuple[str, str], bytes] = {}
        for method, path, status in calls:
            data = b'{"template": {}}' if method == "PUT" else None
            async with served.http.request(
                method, served.url + path, data=data, headers=env.agency_a.header
            ) as response:
                assert (method, path, response.status) == (method, path, status)
                assert response.headers["X-Elastic-Product"] == PRODUCT
                answers[method, path] = await response.read()
    assert orjson.loads(answers["GET", "/"])["version"]["number"] == "8.19.21"
    assert orjson.loads(answers["GET", "/_license?human=false"])["license"]["status"] == "active"
    assert b"filebeat-8.19.0" in answers["GET", "/_cat/templates/filebeat-8.19.0"]  # Beats: present, leave it
    assert orjson.loads(answers["PUT", "/_index_template/filebeat-8.19.0"]) == {"acknowledged": True}
    assert orjson.loads(answers["GET", "/_index_template/filebeat-8.19.0"])["index_templates"]
    assert "filebeat" in orjson.loads(answers["GET", "/_ilm/policy/filebeat"])
    assert answers["HEAD", "/_template/filebeat-7.17.0"] == b""
    assert orjson.loads(answers["GET", "/_xpack"])["features"]["ilm"] == {"available": True, "enabled": True}
    node = next(iter(orjson.loads(answers["GET", "/_nodes/_local/http"])["nodes"].values()))
    assert node["http"]["publish_address"] == served.url.removeprefix("http://")
    assert orjson.loads(answers["GET", "/_cluster/health"])["status"] == "green"
    assert orjson.loads(answers["GET", "/_search"])["status"] == 404


# -- refusals --------------------------------------------------------------------------------


async def test_requests_without_a_valid_ingest_key_are_refused(env: Env) -> None:
    revoked_key, revoked = await env.keys.create(Role.AGENCY, agencies=["agency-a"], name="revoked")
    await env.keys.revoke(revoked_key.id)
    _, analyst = await env.keys.create(Role.ANALYST, agencies=["agency-a"], name="an analyst")
    wrong = f"secmon_{env.agency_a.key.id}_{secrets.token_urlsafe(32)}"
    unauthorized = [
        {},
        {"Authorization": f"ApiKey {wrong}"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": "ApiKey bm90IGEga2V5"},  # base64 of "not a key"
        {"Authorization": "Basic !!!"},
        {"Authorization": "Negotiate abc"},
    ]
    async with serving(env) as served:
        for headers in unauthorized:
            for path in ("/ingest", "/_bulk", "/"):
                method = "GET" if path == "/" else "POST"
                async with served.http.request(method, served.url + path, data=b"{}\n", headers=headers) as response:
                    assert response.status == 401, (headers, path)
                    assert response.headers["WWW-Authenticate"] == "ApiKey"
                    assert response.headers["X-Elastic-Product"] == PRODUCT
                    problem = await response.json(content_type=None)
                    assert problem["type"] == "urn:secmon:problem:unauthorized" and problem["status"] == 401
                    assert problem["title"] and problem["detail"]
                    if path == "/ingest":
                        assert response.content_type == "application/problem+json"
                    else:  # what Elasticsearch clients can read
                        assert response.content_type == "application/json"
                        assert problem["error"]["type"] == "security_exception"
        forbidden = {"Authorization": f"Bearer {analyst}"}
        async with served.http.post(f"{served.url}/ingest", data=b"{}\n", headers=forbidden) as response:
            assert response.status == 403
            assert "role analyst" in (await response.json(content_type=None))["detail"]
        basic = base64.b64encode(f"anyone:{env.agency_a.secret}".encode()).decode()
        async with served.http.post(
            f"{served.url}/ingest", data=b'{"message": "basic"}\n', headers={"Authorization": f"Basic {basic}"}
        ) as response:
            assert response.status == 200
    assert len(await env.events(served)) == 1


async def test_an_oversized_body_is_refused_with_413(env: Env) -> None:
    limit = 64 * 1024
    body = ndjson(*({"message": "x" * 100, "n": n} for n in range(1000)))  # about 110 KiB
    assert len(body) > limit

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    async with serving(env, max_body_bytes=limit) as s:
        for data in (body, chunked()):  # with a Content-Length, and without one
            async with s.http.post(f"{s.url}/ingest", data=data, headers=env.agency_a.header) as response:
                assert response.status == 413
                problem = await response.json(content_type=None)
                assert problem["type"] == "urn:secmon:problem:body-too-large"
                assert str(limit) in problem["detail"]
        async with s.http.post(f"{s.url}/ingest", data=body[:limit], headers=env.agency_a.header) as response:
            assert response.status in (200, 207)  # the service keeps serving; the cut last line may be refused
    assert len(await env.events(s)) >= 500


async def test_a_gzip_bomb_is_refused_without_inflating_it(env: Env) -> None:
    member = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    bomb = member * 1024  # concatenated members are one gzip stream: 1 GiB inflated
    limit = 4 << 20
    assert len(bomb) < limit
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, this process serves the request
    async with serving(env, max_body_bytes=limit) as s:
        headers = {**env.agency_a.header, "Content-Encoding": "gzip"}
        async with s.http.post(f"{s.url}/_bulk", data=bomb, headers=headers) as response:
            assert response.status == 413
            assert "inflates to more than" in (await response.json())["detail"]
        small = gzip.compress(ndjson({"index": {}}, {"message": "after the bomb"}))
        async with s.http.post(f"{s.url}/_bulk", data=small, headers=headers) as response:
            assert response.status == 200
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 256, f"serving the bomb took {grown_mib:.0f} MiB"
    assert len(await env.events(s)) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "problem"),
    [
        (b'{"message": "caf\xe9"}\n', {}, 400, "not-text"),
        (b"\x00\x01\x02binary\xff\xfe\x00garbage", {}, 400, "not-text"),
        (gzip.compress(b'{"message": "hi"}\n'), {}, 400, "not-text"),  # gzip without saying so
        (gzip.compress(b'{"message": "hi"}\n' * 100)[:-20], {"Content-Encoding": "gzip"}, 400, "bad-gzip"),
        (b'{"message": "not gzip"}\n', {"Content-Encoding": "gzip"}, 400, "bad-gzip"),
        (b"", {}, 400, "empty-body"),
        (b"\n \r\n\n", {}, 400, "empty-body"),
        (b'{"message": "hi"}\n', {"Content-Encoding": "br"}, 415, "unsupported-encoding"),
    ],
    ids=["invalid-utf8", "binary", "undeclared-gzip", "truncated-gzip", "not-gzip", "empty", "blank", "brotli"],
)
async def test_unreadable_bodies_get_a_clear_problem_and_the_source_keeps_serving(
    env: Env, body: bytes, headers: dict[str, str], status: int, problem: str
) -> None:
    async with serving(env) as served:
        for path in ("/ingest", "/_bulk"):
            async with served.http.post(
                served.url + path, data=body, headers={**env.agency_a.header, **headers}
            ) as response:
                assert response.status == status
                answer = await response.json(content_type=None)
                assert answer["type"] == f"urn:secmon:problem:{problem}"
                assert answer["status"] == status and answer["title"] and answer["detail"]
        async with served.http.get(f"{served.url}/healthz") as response:
            assert response.status == 200
        ok = ndjson({"message": "still serving"})
        async with served.http.post(f"{served.url}/ingest", data=ok, headers=env.agency_a.header) as response:
            assert response.status == 200
    assert len(await env.events(served)) == 1


# -- the server ------------------------------------------------------------------------------


async def test_the_source_serves_https_and_refuses_a_taken_port(env: Env) -> None:
    cert, key = env.tmp_path / "cert.pem", env.tmp_path / "key.pem"
    subprocess.run(  # noqa: ASYNC221  (a one-off certificate before the test starts)
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    async with serving(env, tls_cert=cert, tls_key=key) as served:
        assert served.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        body = ndjson({"message": "over TLS"})
        async with served.http.post(
            f"{served.url}/ingest", data=body, headers=env.agency_a.header, ssl=context
        ) as response:
            assert response.status == 200

        address = served.source.address
        assert address is not None
        settings = HttpSourceSettings(address=f"127.0.0.1:{address[1]}")  # type: ignore[call-arg]
        taken = HttpSource("taken", settings, served.pipeline, env.keys)
        with pytest.raises(OSError):
            await taken.start()
    assert len(await env.events(served)) == 1
    with socket.socket() as probe:
        assert probe.connect_ex(address) != 0  # stopped: nothing listens any more


async def test_a_request_in_flight_when_the_source_stops_is_answered_and_stored(env: Env) -> None:
    keys = NoticingKeys(env.es, env.names)
    body = ndjson({"message": "in flight at stop"})
    head = (
        f"POST /ingest HTTP/1.1\r\nHost: secmon\r\nAuthorization: ApiKey {env.agency_a.secret}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with serving(dataclasses.replace(env, keys=keys)) as served:
        address = served.source.address
        assert address is not None
        reader, writer = await asyncio.open_connection(*address)
        writer.write(head + body[:5])  # the request has begun; its body is not all there yet
        await writer.drain()
        await keys.asked.wait()  # the application is answering it
        stopping = asyncio.create_task(served.source.stop())
        while await _accepts_connections(address):  # until the source stopped listening
            await asyncio.sleep(0.01)
        writer.write(body[5:])
        await writer.drain()
        status = await reader.readline()
        headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        length = int(headers.split("content-length: ")[1].split("\r\n")[0])
        answer = orjson.loads(await reader.readexactly(length))
        writer.close()
        await stopping
    assert status.startswith(b"HTTP/1.1 200")
    assert "connection: close" in headers  # answered, then the connection closes
    assert answer == {"accepted": 1, "rejected": []}
    assert [event["message"] for event in await env.events(served)] == ["in flight at stop"]


class NoticingKeys(KeyStore):
    """The key store, telling when a request's key is checked: the application is then answering it."""

    def __init__(self, es: AsyncElasticsearch, names: IndexNames) -> None:
        super().__init__(es, names)
        self.asked = asyncio.Event()

    async def verify(self, secret: str) -> ApiKey | None:
        self.asked.set()
        return await super().verify(secret)


async def _accepts_connections(address: tuple[str, int]) -> bool:
    try:
        _, probe = await asyncio.open_connection(*address)
    except OSError:
        return False
    probe.close()
    await probe.wait_closed()
    return True


async def test_keys_elasticsearch_cannot_check_are_answered_503_with_retry_after(env: Env) -> None:
    held = IndexNames(f"{env.names.prefix}-heldkeys-{secrets.token_hex(3)}")
    await create_held(env.es, apikeys_index(held))  # the key index's primary never starts
    secret = f"secmon_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    try:
        async with serving(dataclasses.replace(env, keys=KeyStore(env.es, held))) as served:
            for path in ("/ingest", "/_bulk"):
                headers = {"Authorization": f"ApiKey {secret}"}
                async with served.http.post(served.url + path, data=b"{}\n", headers=headers) as response:
                    assert response.status == 503, path
                    assert int(response.headers["Retry-After"]) >= 1
                    assert response.headers["X-Elastic-Product"] == PRODUCT
                    problem = await response.json(content_type=None)
                    assert problem["type"] == "urn:secmon:problem:keys-unavailable" and problem["status"] == 503
                    assert "Elasticsearch did not answer" in problem["detail"]
                    if path == "/_bulk":  # what Beats read
                        assert response.content_type == "application/json"
                        assert problem["error"]["reason"] == problem["detail"]
                    else:
                        assert response.content_type == "application/problem+json"
    finally:
        await env.es.indices.delete(index=apikeys_index(held))


# -- rate limits -----------------------------------------------------------------------------


async def test_a_key_over_its_rate_limit_is_answered_429_and_nothing_of_that_request_is_stored(env: Env) -> None:
    first = [{"message": f"burst {n}"} for n in range(6)]
    # 0.1 event/s with a 50-second burst: a bucket of 5 events. The first request overdraws it by
    # one event, which takes 10 s to repay: the next requests find the key in debt.
    async with serving(env, rate_limit=0.1, rate_burst=50) as served:
        async with served.http.post(f"{served.url}/ingest", data=ndjson(*first), headers=env.agency_a.header) as ok:
            assert ok.status == 200
        over = ndjson({"message": "one too many"})
        async with served.http.post(f"{served.url}/ingest", data=over, headers=env.agency_a.header) as refused:
            assert refused.status == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert "0.1 events/s" in (await refused.json())["detail"]
        bulk = b'{"index":{}}\n' + orjson.dumps({"message": "bulk one too many"}) + b"\n"
        async with served.http.post(f"{served.url}/_bulk", data=bulk, headers=env.agency_a.beats_header) as refused:
            assert refused.status == 429
            assert (await refused.json())["error"]["type"] == "es_rejected_execution_exception"
    events = await env.events(served)
    assert sorted(e["message"] for e in events) == sorted(e["message"] for e in first)


async def test_events_forwarded_by_an_agency_are_kept_as_they_are_and_a_replay_is_stored_once(env: Env) -> None:
    forwarded = {
        "@timestamp": "2025-03-01T10:00:00.000Z",
        "message": "An account failed to log on.",
        "event": {"original": "<Event>...</Event>", "code": "4625", "kind": "event"},
        "winlog": {"channel": "Security", "event_id": "4625", "event_data": {"TargetUserName": "bob"}},
        "log": {"file": {"path": "C:/logs/Security.evtx"}},
        "host": {"name": "dc-1"},
    }
    body = b'{"create":{"_id":"agency-doc-1"}}\n' + orjson.dumps(forwarded) + b"\n"
    async with serving(env) as served:
        for _ in range(2):  # the agency sends again when it did not see the answer
            url = f"{served.url}/_bulk?format=json"
            async with served.http.post(url, data=body, headers=env.agency_a.header) as response:
                assert response.status == 200
                assert (await response.json())["items"][0]["create"]["status"] == 201
        async with served.http.post(f"{served.url}/_bulk?format=yaml", data=body, headers=env.agency_a.header) as bad:
            assert bad.status == 404
    (stored,) = await env.events(served)
    for name in ("@timestamp", "message", "winlog", "host"):
        assert stored[name] == forwarded[name]  # "beats" would renormalize a winlog event
    assert stored["event"]["original"] == "<Event>...</Event>"
    assert stored["log"]["file"] == {"path": "C:/logs/Security.evtx"}
    assert stored["organization"]["id"] == "agency-a"  # from the key
