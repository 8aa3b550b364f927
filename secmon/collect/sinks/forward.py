"""The forwarder: on a collector-only agency, the drain's sink instead of the bulk writer.

It sends the buffer's documents to the central secmon's http source, ``POST <url>/_bulk``,
authenticated with the agency's API key, and reports what became of each, as the writer does:

* Each document goes as ``{"create": {"_id": <its deterministic id>}}``: the central derives
  its stored id from the agency and that ``_id``, so a batch sent again (the answer was lost,
  the agency restarted before acknowledging its buffer) is stored once.
* ``?format=json``: the documents are already normalized ECS events; the central keeps them
  as they are (fields, ``@timestamp``, ``event.dataset``, ``event.original``), stamps the
  ``organization.id`` of the key and runs its detection on them like on any event.
* Connection errors, timeouts, 429 (after its ``Retry-After``), 5xx, and 401/403 (a key not
  yet created or revoked: the operator fixes it) are retried with backoff, for as long as it
  takes; meanwhile events wait in the disk buffer. A 400/413 for a whole request is split.
* A document the central refuses (its ``organization.id`` is not the key's agency, say) is
  written with the reason to a local dead-letter file (JSON lines) and counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import os
import random
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from secmon.collect.sinks.elasticsearch import WriterStats
from secmon.config import ForwardSettings
from secmon.log import get_logger
from secmon.store import Document, Outcome, source_json

log = get_logger(__name__)

# The format the central parses forwarded documents in: JSON objects that are ECS events already.
FORWARD_FORMAT = "json"
_RETRY_AFTER_MAX = 3600.0


class Forwarder:
    """Sends documents to a central secmon; see the module docstring.

    Use as ``async with Forwarder(settings, deadletter_path, local_indices) as forwarder``.
    ``local_indices`` names documents that are not events to forward (this instance's own
    dead letters): they go to the local dead-letter file.
    """

    def __init__(
        self,
        settings: ForwardSettings,
        deadletter_path: Path,
        local_indices: frozenset[str] = frozenset(),
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if settings.url is None or settings.api_key is None:
            raise ValueError("a Forwarder needs forward.url and forward.api_key")
        self.url = f"{settings.url}/_bulk"
        self.stats = WriterStats()
        self._settings = settings
        self._deadletter_path = deadletter_path
        self._local_indices = local_indices
        self._sleep = sleep
        self._headers = {
            "Authorization": f"ApiKey {settings.api_key.get_secret_value()}",
            "Content-Type": "application/x-ndjson",
        }
        if settings.compress:
            self._headers["Content-Encoding"] = "gzip"
        self._client = httpx.AsyncClient(timeout=settings.timeout, verify=_verify(settings))

    async def __aenter__(self) -> Forwarder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def write(self, docs: Sequence[Document]) -> list[Outcome]:
        """Forward ``docs``; returns each one's outcome, in order, once all are final."""
        outcomes: list[Outcome] = [Outcome.FAILED] * len(docs)
        events: list[int] = []
        local: list[int] = []
        for position, doc in enumerate(docs):
            (local if doc.op != "create" or doc.index in self._local_indices else events).append(position)
        if local:
            await self._dead_letter(docs, local, "not an event to forward", "local", outcomes)
        size = self._settings.batch_size
        batches = [events[start : start + size] for start in range(0, len(events), size)]
        await asyncio.gather(*(self._send(docs, batch, outcomes) for batch in batches))
        return outcomes

    async def _send(self, docs: Sequence[Document], batch: list[int], outcomes: list[Outcome]) -> None:
        """Send the documents at positions ``batch`` until every one is final."""
        pending = batch
        delay = self._settings.retry_initial
        while pending:
            wait: float | None = None
            try:
                answer = await self._post([docs[position] for position in pending])
            except _Split:
                half = len(pending) // 2
                await asyncio.gather(
                    self._send(docs, pending[:half], outcomes), self._send(docs, pending[half:], outcomes)
                )
                return
            except _Refused as refused:  # one document the central cannot take at all
                await self._dead_letter(docs, pending, refused.reason, refused.error_type, outcomes)
                return
            except _Retry as exc:
                log.warning("The central secmon did not take a batch; retrying.", url=self.url, reason=str(exc))
                wait = exc.retry_after
            else:
                pending = await self._settle(docs, pending, answer, outcomes)
            if pending:
                self.stats.retries += 1
                await self._sleep(wait if wait is not None else delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.retry_max)

    async def _post(self, docs: list[Document]) -> dict[str, Any]:
        body = b"".join(_encode(doc) for doc in docs)
        content = gzip.compress(body, compresslevel=1) if self._settings.compress else body
        self.stats.requests += 1
        self.stats.bytes_sent += len(content)
        try:
            response = await self._client.post(
                self.url, params={"format": FORWARD_FORMAT}, content=content, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            try:
                answer = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise _Retry("the answer is not JSON") from None
            items = answer.get("items") if isinstance(answer, dict) else None
            if not isinstance(items, list) or len(items) != len(docs):
                raise _Retry("the answer does not report every document")
            return answer  # type: ignore[no-any-return]
        reason = f"HTTP {status}: {_problem(response)}"
        if status in (400, 413):
            if len(docs) > 1:
                raise _Split()  # find the one document the central cannot take
            raise _Refused(reason, f"http_{status}")
        # 401/403 (the key), 404 (the url), 429, 5xx: the operator or time may fix it; never drop.
        raise _Retry(reason, _retry_after(response.headers.get("retry-after")))

    async def _settle(
        self, docs: Sequence[Document], pending: list[int], answer: dict[str, Any], outcomes: list[Outcome]
    ) -> list[int]:
        """Finalize what the bulk answer settles; return the positions to send again."""
        retry: list[int] = []
        refused: dict[tuple[str, str], list[int]] = {}
        for position, entry in zip(pending, answer["items"], strict=True):
            result = next(iter(entry.values())) if isinstance(entry, dict) and entry else {}
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                self._finish(docs[position], position, Outcome.STORED, outcomes)
            elif status == 409:
                self._finish(docs[position], position, Outcome.DUPLICATE, outcomes)
            elif status == 429 or status >= 500 or status == 0:
                retry.append(position)
            else:
                error = result.get("error") or {}
                key = (str(error.get("reason", f"HTTP {status}")), str(error.get("type", f"http_{status}")))
                refused.setdefault(key, []).append(position)
        for (reason, error_type), positions in refused.items():
            await self._dead_letter(docs, positions, reason, error_type, outcomes)
        return retry

    async def _dead_letter(
        self, docs: Sequence[Document], positions: list[int], reason: str, error_type: str, outcomes: list[Outcome]
    ) -> None:
        """Keep the documents at ``positions`` in the local dead-letter file, durably, with the reason."""
        log.warning(
            "Dead-lettering documents locally.", count=len(positions), reason=reason, path=str(self._deadletter_path)
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = b"".join(
            source_json(
                {
                    "@timestamp": now,
                    "deadletter": {
                        "reason": reason,
                        "error_type": error_type,
                        "target": self.url,
                        "component": docs[position].component,
                        "original": docs[position].source,
                    },
                }
            )
            + b"\n"
            for position in positions
        )
        try:
            await asyncio.to_thread(_append_durably, self._deadletter_path, lines)
        except OSError as exc:
            log.error("Cannot write the local dead-letter file.", path=str(self._deadletter_path), error=str(exc))
            outcome = Outcome.FAILED
        else:
            outcome = Outcome.DEAD_LETTERED
        for position in positions:
            self._finish(docs[position], position, outcome, outcomes)

    def _finish(self, doc: Document, position: int, outcome: Outcome, outcomes: list[Outcome]) -> None:
        outcomes[position] = outcome
        self.stats.count(outcome, doc.component)


class _Retry(Exception):
    """The whole request must be sent again, after ``retry_after`` seconds if the central said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Split(Exception):
    """The request was refused whole: send each half on its own."""


class _Refused(Exception):
    """The central refused a request of one document."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


def _encode(doc: Document) -> bytes:
    action = orjson.dumps({"create": {"_id": doc.id}})
    return b"%b\n%b\n" % (action, source_json(doc.source))


def _verify(settings: ForwardSettings) -> ssl.SSLContext | bool:
    if not settings.verify_certs:
        return False
    if settings.ca_certs is not None:
        return ssl.create_default_context(cafile=str(settings.ca_certs))
    return True


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)


def _problem(response: httpx.Response) -> str:
    """The reason an error answer gives (problem details or Elasticsearch's error), or its start."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)[:500]
    return str(body)[:200]


def _append_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
