"""The API key store against the real node: secrets shown once, hashes stored, answers cached."""

from __future__ import annotations

import hashlib
import secrets
import types

import orjson
import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from secmon.auth import ApiKey, KeyStore, KeyStoreUnavailable, Role
from secmon.store import IndexNames


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def store(es: AsyncElasticsearch, names: IndexNames) -> KeyStore:
    keys = KeyStore(es, names)
    await keys.ensure_index()
    return keys


async def stored_documents(es: AsyncElasticsearch, store: KeyStore) -> list[dict[str, object]]:
    await es.indices.refresh(index=store.index)
    return [hit async for hit in async_scan(es, index=store.index, query={"query": {"match_all": {}}})]


async def test_a_created_key_verifies_is_listed_and_stops_working_when_revoked(store: KeyStore) -> None:
    key, secret = await store.create(Role.AGENCY, agencies=["agency-a", "agency-b"], name="web farm")

    assert secret.startswith(f"secmon_{key.id}_")
    assert len(secret.removeprefix(f"secmon_{key.id}_")) >= 32
    assert key == ApiKey(key.id, "web farm", Role.AGENCY, ("agency-a", "agency-b"), key.created, revoked=False)
    assert await store.verify(secret) == key
    listed = {k.id: k for k in await store.list()}
    assert listed[key.id] == key

    assert await store.revoke(key.id) is True
    assert await store.verify(secret) is None  # at once in the process that revoked it
    assert {k.id: k for k in await store.list()}[key.id].revoked is True
    assert await store.revoke("0123456789abcdef") is False
    assert await store.revoke("not-an-id") is False


async def test_a_fresh_store_verifies_a_key_created_elsewhere(
    es: AsyncElasticsearch, names: IndexNames, store: KeyStore
) -> None:
    key, secret = await store.create(Role.ADMIN, name="ops")
    elsewhere = KeyStore(es, names)
    assert await elsewhere.verify(secret) == key
    assert key.covers("any-agency")


async def test_only_the_hash_of_the_secret_is_stored(es: AsyncElasticsearch, store: KeyStore) -> None:
    key, secret = await store.create(Role.ANALYST, agencies=["agency-a"], name="analyst")
    random_part = secret.removeprefix(f"secmon_{key.id}_")

    documents = await stored_documents(es, store)
    dump = orjson.dumps(documents).decode()
    assert secret not in dump and random_part not in dump
    ours = next(doc for doc in documents if doc["_id"] == key.id)
    assert ours["_source"]["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()  # type: ignore[index]
    search = await es.search(index=store.index, query={"query_string": {"query": f'"{random_part}"'}})
    assert search["hits"]["total"]["value"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "secmon_",
        "secmon__",
        "Bearer whatever",
        "secmon_0123456789abcdef_short",
        "secmon_NOT-HEX-AT-ALL!_" + "a" * 43,
        "secmon_0123456789abcdef_" + "a" * 43 + "\n",
        "secmon_0123456789abcdef_" + "é" * 43,
        "x" * 100_000,
    ],
)
async def test_malformed_secrets_are_refused_without_error(store: KeyStore, bad: str) -> None:
    assert await store.verify(bad) is None


async def test_a_wrong_secret_for_a_real_key_and_an_unknown_key_are_refused(store: KeyStore) -> None:
    key, secret = await store.create(Role.AGENCY, agencies=["agency-a"], name="wrong secrets")
    wrong = f"secmon_{key.id}_{secrets.token_urlsafe(32)}"
    unknown = f"secmon_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"

    assert await store.verify(wrong) is None
    assert await store.verify(unknown) is None
    assert await store.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert await store.verify(secret) == key


async def test_a_revoked_key_keeps_working_elsewhere_only_until_the_cache_expires(
    es: AsyncElasticsearch, names: IndexNames, store: KeyStore
) -> None:
    clock = Clock()
    ingest_node = KeyStore(es, names, ttl=30.0, miss_ttl=5.0, clock=clock)  # another secmon process
    key, secret = await store.create(Role.AGENCY, agencies=["agency-a"], name="revoked elsewhere")
    assert await ingest_node.verify(secret) == key

    assert await store.revoke(key.id)
    clock.now += 29.0
    assert await ingest_node.verify(secret) == key  # still cached
    clock.now += 2.0
    assert await ingest_node.verify(secret) is None


async def test_answers_are_cached_so_elasticsearch_is_not_asked_per_request(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    clock = Clock()
    outage_names = IndexNames(f"{names.prefix}-outage")  # an index of its own, to close
    creator = KeyStore(es, outage_names)
    await creator.ensure_index()
    key, secret = await creator.create(Role.AGENCY, agencies=["agency-a"], name="cached")
    wrong = f"secmon_{key.id}_{secrets.token_urlsafe(32)}"
    own = KeyStore(es, outage_names, ttl=30.0, miss_ttl=5.0, clock=clock)
    assert await own.verify(secret) == key
    assert await own.verify(wrong) is None

    await es.indices.close(index=own.index)  # from now on, any question about a key fails
    try:
        clock.now += 4.0
        assert await own.verify(secret) == key
        assert await own.verify(wrong) is None  # the miss is cached too
        clock.now += 2.0
        with pytest.raises(KeyStoreUnavailable):
            await own.verify(wrong)  # the miss expired, and nobody can say now
        clock.now += 60.0
        assert await own.verify(secret) == key  # verified before the outage: still trusted
    finally:
        await es.indices.delete(index=own.index)


async def test_an_agency_key_must_name_an_agency(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="at least one agency"):
        await store.create(Role.AGENCY, name="nobody")
    with pytest.raises(ValueError, match="empty"):
        await store.create(Role.AGENCY, agencies=["a", " "], name="blank")
    with pytest.raises(ValueError, match="name"):
        await store.create(Role.ADMIN, name="  ")


async def test_the_index_is_strict_and_ensure_index_is_idempotent(es: AsyncElasticsearch, store: KeyStore) -> None:
    await store.ensure_index()
    await store.ensure_index()
    mapping = await es.indices.get_mapping(index=store.index)
    assert mapping[store.index]["mappings"]["dynamic"] == "strict"


def test_the_public_surface_is_what_all_lists() -> None:
    import secmon.auth

    public = {
        name
        for name, value in vars(secmon.auth).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # its submodules are not its surface
    }
    assert set(secmon.auth.__all__) == public
