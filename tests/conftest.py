"""Shared fixtures: a real Elasticsearch node and a unique index prefix per test session.

The node is secmon's own local node on port 9250 (not the 9200 a user's ``secmon up`` takes),
started with an empty data folder when it is not running and stopped at the end. Set
SECMON_TEST_ES_URL to run the suite against another cluster instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.config import ElasticsearchSettings, LocalNodeSettings
from secmon.node import LocalNode
from secmon.store import IndexNames, connect, install_templates

TEST_NODE_PORT = 9250


@pytest.fixture(scope="session")
def local_node_settings() -> LocalNodeSettings:
    """Settings of the suite's local node (the distribution cache is shared with the user's)."""
    return LocalNodeSettings(port=TEST_NODE_PORT)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def es_settings(local_node_settings: LocalNodeSettings) -> Iterator[ElasticsearchSettings]:
    """How to reach the test cluster, with an index prefix no other session uses."""
    prefix = f"secmon-test-{secrets.token_hex(4)}"
    url = os.environ.get("SECMON_TEST_ES_URL")
    if url:
        yield ElasticsearchSettings(url=url, index_prefix=prefix)  # type: ignore[call-arg]
        return
    node = LocalNode(local_node_settings)
    # A fresh data folder whenever this session starts the node: this distribution cannot
    # delete data streams, so earlier sessions' test data would otherwise pile up.
    started_here = node.start(fresh=True).started
    yield ElasticsearchSettings(index_prefix=prefix, local=local_node_settings)  # type: ignore[call-arg]
    if started_here:
        node.stop()


@pytest.fixture(scope="session")
async def es(es_settings: ElasticsearchSettings) -> AsyncIterator[AsyncElasticsearch]:
    """A client of the test cluster, with secmon's templates installed under the session prefix."""
    client = connect(es_settings)
    if not os.environ.get("SECMON_TEST_ES_URL"):
        # Sessions that reuse a running test node leave their data streams (this distribution
        # cannot delete them); room for many sessions before the node's default 1,000 shards.
        await client.cluster.put_settings(persistent={"cluster.max_shards_per_node": 20_000})
    await install_templates(client, es_settings)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def names(es_settings: ElasticsearchSettings) -> IndexNames:
    return IndexNames(es_settings.index_prefix)
