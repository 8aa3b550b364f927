"""Waiting until indices are searchable: every primary shard behind a name started.

An index is in the cluster state, and matched by names and patterns, before its primary shard
has started: the index is created by one cluster-state update and its shard marked started by a
later one, once the node has initialised it; the busier the node, the longer in between. A
search or count in that window fails with ``503 search_phase_execution_exception`` ("all shards
failed", each shard ``no_shard_available_action_exception``) when no shard of the target
answers, and a point in time fails with "Search rejected due to missing shards" when any one is
missing. The client's own retries of a 503 do not help: they are sent at once, inside the window.

* Where secmon creates an index (``ensure_index``, the alerts index, a rollover, a benchmark's
  index), it waits for its primaries right away with :func:`wait_for_primaries`.
* Where it reads what another writer may have just created (the data stream secmon's bulk
  writer makes for a dataset's first event, a benchmark peer's index), it reads with
  :func:`read_when_ready`: such a 503 waits for the indices it names, then reads again.

Neither waits forever: after the bound, :class:`~secmon.errors.IndexNotReady` names the indices
whose primaries did not start. A new index whose primary has not started holds no documents
yet, so a search that other shards answered (``_shards.failed`` > 0, not an error) misses
nothing of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from elasticsearch import ApiError, AsyncElasticsearch

from secmon.errors import IndexNotReady
from secmon.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# As long as Elasticsearch itself waits for a new index's primary before answering a create.
READY_SECONDS = 30.0
# An API request waits less: its caller may give up first, and the 503 it gets says when to retry.
REQUEST_READY_SECONDS = 10.0
_NO_SHARD = "no_shard_available_action_exception"  # a shard with no started copy to ask
_MISSING_SHARD = re.compile(r"\[([^\[\]]+)\]\[\d+\]")  # "[index][0]" in "missing shards [[a][0], [b][0]]"
_SHARD_COUNTS = "indices.*.number_of_shards,indices.*.active_primary_shards,indices.*.active_shards"


async def wait_for_primaries(
    client: AsyncElasticsearch, index: str | Sequence[str], timeout: float = READY_SECONDS
) -> None:
    """Return once every index behind ``index`` (names, data streams, patterns) has its primaries started.

    A pattern that matches nothing is ready, and so is a name that does not exist (any more).
    Raises :class:`~secmon.errors.IndexNotReady` after ``timeout`` seconds.
    """
    names = [index] if isinstance(index, str) else list(index)
    deadline = time.monotonic() + timeout
    # Not wait_for_status=yellow: Elasticsearch reports a new index yellow while its primary is
    # still unassigned or initialising (red only once allocating it failed or was refused), so a
    # count right after that wait fails as before. Count the started primaries instead.
    lenient = client.options(ignore_status=408)
    while True:
        # timeout=0: naming an index is itself a condition health waits for (that it exists).
        response = await lenient.cluster.health(index=names, level="indices", timeout="0s", filter_path=_SHARD_COUNTS)
        indices: dict[str, Any] = response.body.get("indices") or {}
        waiting = sorted(name for name, shards in indices.items() if _primaries_missing(shards))
        if not waiting:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IndexNotReady(waiting, timeout)
        # Wait for one more shard of those to start, then count again: no polling in between.
        waited = _fitting_a_request_line(waiting)
        active = sum(int(indices[name].get("active_shards", 0)) for name in waited)
        await client.options(ignore_status=408, request_timeout=remaining + 30).cluster.health(
            index=waited,
            wait_for_active_shards=str(active + 1),
            timeout=f"{max(1, int(remaining * 1000))}ms",
            filter_path="timed_out",
        )


def _primaries_missing(shards: dict[str, Any]) -> bool:
    return int(shards.get("active_primary_shards", 0)) < int(shards.get("number_of_shards", 0))


async def read_when_ready(
    client: AsyncElasticsearch, read: Callable[[], Awaitable[T]], *, timeout: float = READY_SECONDS
) -> T:
    """``await read()``; when it fails on an index whose primary has not started yet, wait for it and read again.

    ``read`` is any search, count or point in time (with the refresh it needs: a refresh skips
    an index without an active primary). Raises :class:`~secmon.errors.IndexNotReady` when the
    indices are still not searchable after ``timeout`` seconds; any other error as it came.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await read()
        except ApiError as exc:
            indices = unready_indices(exc)
            if indices is None:
                raise
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IndexNotReady(indices, timeout) from None
        log.info("An index is not searchable yet; waiting for its primary shards.", indices=",".join(indices))
        try:
            await wait_for_primaries(client, _fitting_a_request_line(indices), remaining)
        except IndexNotReady as exc:
            raise IndexNotReady(exc.indices, timeout) from None  # the whole bound, not what was left of it


def _fitting_a_request_line(indices: list[str], limit: int = 2048) -> list[str]:
    """The first of ``indices`` whose names fit in a URL (Elasticsearch's request line is 4 kB at most).

    The rest, if still not ready, fail the next read and are waited for then.
    """
    fitting, length = indices[:1], len(indices[0])
    for name in indices[1:]:
        length += len(name) + 1
        if length > limit:
            break
        fitting.append(name)
    return fitting


def unready_indices(exc: ApiError) -> list[str] | None:
    """The indices ``exc`` failed on for want of a started primary; None when it failed for another reason."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if exc.meta.status != 503 or not isinstance(error, dict) or error.get("type") != "search_phase_execution_exception":
        return None
    failed = error.get("failed_shards") or []
    unavailable = [shard for shard in failed if (shard.get("reason") or {}).get("type") == _NO_SHARD]
    if failed and len(unavailable) == len(failed):
        return sorted({str(shard["index"]) for shard in failed if shard.get("index")}) or None
    # A point in time, or allow_partial_search_results=false: no per-shard failures, one reason.
    while isinstance(error, dict):
        reason = str(error.get("reason") or "")
        if reason.startswith("Search rejected due to missing shards"):
            return sorted(set(_MISSING_SHARD.findall(reason))) or None
        error = error.get("caused_by")
    return None
