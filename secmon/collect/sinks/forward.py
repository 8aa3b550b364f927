"""The forward sink: on a collector-only agency, the drain's sink instead of the bulk writer.

It sends the buffer's documents to the central secmon's http source, ``POST <url>/_bulk``,
authenticated with the agency's API key, and reports what became of each, as the writer does:

* Each document goes as ``{"create": {"_id": <its deterministic id>}}``: the central derives
  its stored id from the agency and that ``_id``, so a batch sent again (the answer was lost,
  the agency restarted before acknowledging its buffer) is stored once.
* ``?format=json``: the documents are already normalized ECS events; the central keeps them
  as they are (fields, ``@timestamp``, ``event.dataset``, ``event.original``), stamps the
  ``organization.id`` of the key and runs its detection on them like on any event.
* Each batch is delivered by :class:`~secmon.collect.sinks.delivery.Delivery`: connection
  errors, timeouts, 429 (after its ``Retry-After``), 5xx, and 401/403 (a key not yet created or
  revoked: the operator fixes it) are retried with backoff, for as long as it takes; meanwhile
  events wait in the disk buffer. A 400/413 for a whole request is split.
* A document the central refuses (its ``organization.id`` is not the key's agency, say) is
  written with the reason to a local dead-letter file (JSON lines) and counted.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from secmon.collect.sinks.delivery import (
    Delivery,
    DeliveryStats,
    Envelope,
    Receipt,
    Refusal,
    RequestRefused,
    Result,
    RetryRequest,
    bulk_results,
    retry_after_seconds,
)
from secmon.config import ForwardSettings
from secmon.log import get_logger
from secmon.store import Document, Outcome, source_json
from secmon.timestamps import now_iso_seconds

if TYPE_CHECKING:
    from secmon.collect.sinks import SinkEnvironment
    from secmon.config import Settings

log = get_logger(__name__)

# The format the central parses forwarded documents in: JSON objects that are ECS events already.
FORWARD_FORMAT = "json"
_NOT_FORWARDED = Refusal("local", "not an event to forward")


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
        self.stats = DeliveryStats()
        self._settings = settings
        self._local_indices = local_indices
        self._transport = CentralTransport(settings, self.stats)
        self.url = self._transport.receiver
        self._delivery = Delivery(
            self._transport,
            DeadLetterFile(deadletter_path, self.url),
            self.stats,
            retry_initial=settings.retry_initial,
            retry_max=settings.retry_max,
            sleep=sleep,
        )

    async def __aenter__(self) -> Forwarder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._transport.aclose()

    async def write(self, docs: Sequence[Document]) -> list[Outcome]:
        """Forward ``docs``; returns each one's outcome, in order, once all are final."""
        receipt = Receipt(len(docs))
        events: list[Envelope] = []
        local: list[tuple[Envelope, Refusal]] = []
        for position, doc in enumerate(docs):
            envelope = Envelope(doc, _encode(doc), receipt, position)
            if doc.op != "create" or doc.index in self._local_indices:
                local.append((envelope, _NOT_FORWARDED))
            else:
                events.append(envelope)
        if local:
            await self._delivery.dead_letter(local)  # the file keeps them: no stand-ins to send
        size = self._settings.batch_size
        await asyncio.gather(
            *(self._delivery.deliver(events[start : start + size]) for start in range(0, len(events), size))
        )
        return await receipt.wait()


class CentralTransport:
    """Sends a batch as one ``POST <url>/_bulk`` to the central and reads each document's result."""

    def __init__(self, settings: ForwardSettings, stats: DeliveryStats) -> None:
        assert settings.url is not None and settings.api_key is not None  # checked by the Forwarder
        self.receiver = f"{settings.url}/_bulk"
        self._compress = settings.compress
        self._stats = stats
        self._headers = {
            "Authorization": f"ApiKey {settings.api_key.get_secret_value()}",
            "Content-Type": "application/x-ndjson",
        }
        if settings.compress:
            self._headers["Content-Encoding"] = "gzip"
        self._client = httpx.AsyncClient(timeout=settings.timeout, verify=_verify(settings))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, batch: Sequence[Envelope]) -> list[Result]:
        body = b"".join(envelope.payload for envelope in batch)
        content = gzip.compress(body, compresslevel=1) if self._compress else body
        self._stats.requests += 1
        self._stats.bytes_sent += len(content)
        try:
            response = await self._client.post(
                self.receiver, params={"format": FORWARD_FORMAT}, content=content, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise RetryRequest(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            try:
                answer = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise RetryRequest("the answer is not JSON") from None
            return bulk_results(answer.get("items") if isinstance(answer, dict) else None, batch)
        reason = f"HTTP {status}: {_problem(response)}"
        if status in (400, 413):
            raise RequestRefused(Refusal(f"http_{status}", reason))
        # 401/403 (the key), 404 (the url), 429, 5xx: the operator or time may fix it; never drop.
        raise RetryRequest(reason, retry_after_seconds(response.headers.get("retry-after")))


class DeadLetterFile:
    """Keeps what is not forwarded in a local file of JSON lines, durably, with the reason."""

    def __init__(self, path: Path, target: str) -> None:
        self._path = path
        self._target = target

    async def keep(self, refused: Sequence[tuple[Envelope, Refusal]]) -> list[Outcome]:
        """Append the refused documents to the file; DEAD_LETTERED each, or FAILED if the file cannot be written."""
        by_refusal: dict[Refusal, int] = {}
        for _, refusal in refused:
            by_refusal[refusal] = by_refusal.get(refusal, 0) + 1
        for refusal, count in by_refusal.items():
            log.warning("Dead-lettering documents locally.", count=count, reason=refusal.reason, path=str(self._path))
        now = now_iso_seconds()
        lines = b"".join(
            source_json(
                {
                    "@timestamp": now,
                    "deadletter": {
                        "reason": refusal.reason,
                        "error_type": refusal.type,
                        "target": self._target,
                        "component": envelope.doc.component,
                        "original": envelope.doc.source,
                    },
                }
            )
            + b"\n"
            for envelope, refusal in refused
        )
        try:
            await asyncio.to_thread(_append_durably, self._path, lines)
        except OSError as exc:
            log.error("Cannot write the local dead-letter file.", path=str(self._path), error=str(exc))
            return [Outcome.FAILED] * len(refused)
        return [Outcome.DEAD_LETTERED] * len(refused)


def build(settings: Settings, environment: SinkEnvironment) -> Forwarder:
    """The forwarder of ``settings.forward``, for the ``forward`` entry of :data:`~secmon.collect.sinks.SINKS`.

    What the central refuses goes to ``state_dir/deadletter.ndjson``, and so do this instance's
    own dead letters, which are not events to forward.
    """
    deadletter = settings.state_dir / "deadletter.ndjson"
    return Forwarder(settings.forward, deadletter, frozenset({environment.names.deadletter}))


def _encode(doc: Document) -> bytes:
    action = orjson.dumps({"create": {"_id": doc.id}})
    return b"%b\n%b\n" % (action, source_json(doc.source))


def _verify(settings: ForwardSettings) -> ssl.SSLContext | bool:
    if not settings.verify_certs:
        return False
    if settings.ca_certs is not None:
        return ssl.create_default_context(cafile=str(settings.ca_certs))
    return True


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
