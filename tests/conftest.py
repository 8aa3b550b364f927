"""Shared fixtures: a real Elasticsearch node and a unique index prefix per test session.

The node is secmon's own local node on port 9250 (not the 9200 a user's ``secmon up`` takes),
started with an empty data folder when it is not running. Test sessions running at the same
time share it: each registers itself, and the last one to end stops a node a test session
started (one started by hand is left running). Set SECMON_TEST_ES_URL to run the suite against
another cluster instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.config import ElasticsearchSettings, LocalNodeSettings
from secmon.node import LocalNode
from secmon.store import IndexNames, connect, install_templates

TEST_NODE_PORT = 9250
# Who uses the test node: a file per running session, and a mark when a session started it.
SESSIONS = Path(tempfile.gettempdir()) / f"secmon-test-node-{TEST_NODE_PORT}"


@contextlib.contextmanager
def _sessions_locked() -> Iterator[Path]:
    """The sessions folder, for one session at a time (starting or stopping the node included)."""
    SESSIONS.mkdir(exist_ok=True)
    with (SESSIONS / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield SESSIONS


def _any_session_alive(folder: Path) -> bool:
    """Whether a registered session still runs (the files of killed ones are removed)."""
    alive = False
    for entry in folder.glob("session-*"):
        try:
            os.kill(int(entry.name.removeprefix("session-")), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        except (PermissionError, ValueError):
            pass  # running under another user, or not a file of ours: count it as alive
        alive = True
    return alive


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
    session = f"session-{os.getpid()}"
    with _sessions_locked() as folder:
        (folder / session).touch()
        if node.pid() is None:  # marked before starting: a session killed while it starts leaves the mark
            (folder / "started-by-tests").touch()
        # A fresh data folder whenever a session starts the node: this distribution cannot
        # delete data streams, so earlier sessions' test data would otherwise pile up.
        node.start(fresh=True)
    yield ElasticsearchSettings(index_prefix=prefix, local=local_node_settings)  # type: ignore[call-arg]
    with _sessions_locked() as folder:
        (folder / session).unlink(missing_ok=True)
        if not _any_session_alive(folder) and (folder / "started-by-tests").exists():
            node.stop()
            (folder / "started-by-tests").unlink()


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
