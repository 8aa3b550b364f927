"""Sinks: where the drain sends the buffer's documents. Each module is one entry of :data:`SINKS`.

* ``elasticsearch``: the bulk writer, storing into Elasticsearch (the full service).
* ``forward``: the forwarder, sending to a central secmon's http source (a collector-only agency).
* ``kafka``: the producer of a collector in the scale-out mode, into the bus's events topic.

The configuration names no sink: :func:`sink_type` is ``forward`` when ``forward.url`` is set,
``elasticsearch`` otherwise; the scale-out mode's collect role asks for ``kafka``. A module
offers ``build(settings, environment)`` and is imported only when its sink runs. All deliver
their batches through :mod:`~secmon.collect.sinks.delivery`, so a new sink is its module (its
transport and dead-letter store), one line here and one test module.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

    from secmon.bus.cluster import Cluster
    from secmon.collect.sinks.delivery import DeliveryStats
    from secmon.config import Settings
    from secmon.store import Document, IndexNames, Outcome

SINKS: dict[str, str] = {
    "elasticsearch": "secmon.collect.sinks.elasticsearch",
    "forward": "secmon.collect.sinks.forward",
    "kafka": "secmon.collect.sinks.kafka",
}


class Sink(Protocol):
    """Where the drain sends documents; use as ``async with sink: await sink.write(docs)``.

    ``write`` returns each document's outcome, in order, once every one is final; it retries
    what can be retried for as long as it takes and never raises for a document.
    """

    stats: DeliveryStats

    async def write(self, docs: Sequence[Document]) -> list[Outcome]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkEnvironment:
    """What a sink may need besides the settings.

    ``client`` is None where there is no Elasticsearch (a collector-only agency), ``cluster``
    where there is no bus.
    """

    names: IndexNames
    client: AsyncElasticsearch | None = None
    cluster: Cluster | None = None


def sink_type(settings: Settings) -> str:
    """The key in :data:`SINKS` of the sink ``settings`` send to."""
    return "forward" if settings.forward.url is not None else "elasticsearch"


def build_sink(settings: Settings, environment: SinkEnvironment, kind: str | None = None) -> Sink:
    """The sink ``kind`` (default: the one ``settings`` send to, see :func:`sink_type`), not yet started.

    Enter it with ``async with``.
    """
    module = importlib.import_module(SINKS[kind or sink_type(settings)])
    sink: Sink = module.build(settings, environment)
    return sink
