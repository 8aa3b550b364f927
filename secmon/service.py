"""The main job that ``secmon up`` runs: Elasticsearch, the pipeline and its sources, detection,
notifications and the API, until SIGINT or SIGTERM; then it stops the sources, sends what is
buffered and stops what it started. ``secmon api`` runs the API alone (:func:`run_api`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from collectors.sources import Source, build_source
from secmon.api import ApiServices, create_app
from secmon.auth import KeyStore
from secmon.config import Settings
from secmon.detection.stage import DetectionStage
from secmon.log import get_logger
from secmon.node import LocalNode
from secmon.notify import Notifier, register_metrics
from secmon.pipeline.buffer import DiskBuffer
from secmon.pipeline.pipeline import Pipeline
from secmon.pipeline.telemetry import Telemetry
from secmon.serving import AsgiServer, freeze_startup_heap
from secmon.store import (
    BulkWriter,
    IndexNames,
    cluster_health,
    cluster_url,
    connect,
    install_templates,
    retention_loop,
)

log = get_logger(__name__)

DRAIN_ON_STOP_SECONDS = 10.0


@dataclass(slots=True)
class Running:
    """What a running service is made of, for whoever drives it (``secmon up``, ``import``, tests)."""

    settings: Settings
    client: AsyncElasticsearch
    pipeline: Pipeline
    writer: BulkWriter
    keys: KeyStore
    sources: dict[str, Source]
    detection: DetectionStage | None = None
    notifier: Notifier | None = None
    api: AsgiServer | None = None


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, *, with_sources: bool = True, buffer_dir: Path | None = None
) -> AsyncIterator[Running]:
    """Start Elasticsearch (if local), the writer, the buffer's drain and the sources; undo on exit.

    ``buffer_dir`` gives a one-off job (``secmon import``) a buffer of its own, apart from the
    service's, which another process may be using.
    """
    node: LocalNode | None = None
    if settings.elasticsearch.url is None:
        local = LocalNode(settings.elasticsearch.local)
        if (await asyncio.to_thread(local.start)).started:
            node = local  # started here, so stopped here
    client = connect(settings.elasticsearch, max_retries=0)
    names = IndexNames(settings.elasticsearch.index_prefix)
    buffer = DiskBuffer(
        buffer_dir or settings.state_dir / "buffer",
        max_bytes=settings.buffer.max_bytes,
        segment_bytes=settings.buffer.segment_bytes,
        fsync_interval=settings.buffer.fsync_interval,
    )
    telemetry = Telemetry()
    detection: DetectionStage | None = None
    if settings.detection.enabled:
        detection = await asyncio.to_thread(
            DetectionStage.load,
            settings.detection,
            names.alerts,
            cache_dir=settings.state_dir / "rule-cache",
            telemetry=telemetry,
            state_dir=settings.state_dir,
        )
    pipeline = Pipeline(names, buffer, telemetry, stages=[detection] if detection else [])
    sources: dict[str, Source] = {}
    stop_metrics = telemetry.serve(settings.metrics.address) if with_sources and settings.metrics.address else None
    # Only the service notifies and serves the API: not one-off jobs such as secmon import.
    notifier = Notifier(settings.notifications, client, names.notifications) if with_sources else None
    api: AsgiServer | None = None
    try:
        await install_templates(client, settings.elasticsearch)
        keys = KeyStore(client, names)
        await keys.ensure_index()
        version, health = await cluster_health(client)
        log.info("Elasticsearch ready.", url=cluster_url(settings.elasticsearch), version=version, health=health)
        async with BulkWriter(client, settings.writer, names) as writer:
            tasks = [
                asyncio.create_task(pipeline.drain(writer, batch_size=settings.writer.batch_size), name="drain"),
                asyncio.create_task(retention_loop(client, names, settings.retention), name="retention"),
            ]
            if detection is not None:
                tasks.append(asyncio.create_task(detection.watch(), name="rule-reload"))
            if notifier is not None:
                await notifier.ensure_index()
                register_metrics(telemetry.registry)
                tasks.append(asyncio.create_task(notifier.run(), name="notifications"))
                if detection is not None:
                    detection.on_new_alerts = notifier.notify
            try:
                if with_sources and settings.api.enabled:
                    api = await start_api(settings, client, keys, notifier, telemetry)
                if with_sources:
                    for component, source_settings in settings.sources.items():
                        source = build_source(component, source_settings, pipeline, settings.state_dir, keys)
                        await source.start()
                        sources[component] = source
                if with_sources:
                    freeze_startup_heap()
                yield Running(settings, client, pipeline, writer, keys, sources, detection, notifier, api)
            finally:
                for source in sources.values():
                    await source.stop()
                if not await pipeline.wait_drained(DRAIN_ON_STOP_SECONDS):
                    log.warning(
                        "Stopping with events still buffered; they are sent at the next start.",
                        bytes=buffer.pending_bytes,
                    )
                if notifier is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(notifier.join(), DRAIN_ON_STOP_SECONDS)
                if api is not None:
                    await api.stop()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if notifier is not None:
            await notifier.aclose()
        if stop_metrics is not None:
            stop_metrics()
        buffer.close()
        await client.close()
        if node is not None:
            await asyncio.to_thread(node.stop)


async def start_api(
    settings: Settings,
    client: AsyncElasticsearch,
    keys: KeyStore,
    notifier: Notifier | None,
    telemetry: Telemetry | None = None,
) -> AsgiServer:
    """The API, serving on ``api.address`` (with the pipeline's metrics when it runs here)."""
    services = ApiServices.build(settings, client, keys)
    services.notifier = notifier
    if telemetry is not None:
        services.registries.append(telemetry.registry)
    await services.prepare()
    api = settings.api
    server = AsgiServer(create_app(services), api.address, name="api", tls_cert=api.tls_cert, tls_key=api.tls_key)
    await server.start()
    return server


async def run_service(
    settings: Settings,
    on_ready: Callable[[Running], None] | None = None,
    monitor: Callable[[Running], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM; ``monitor`` (a status display) runs alongside until then."""
    async with until_signalled() as stop, running_service(settings) as running:
        if on_ready is not None:
            on_ready(running)
        watching = asyncio.create_task(monitor(running), name="monitor") if monitor is not None else None
        try:
            await stop.wait()
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
        log.info("Stopping: flushing what is in flight.")


async def run_api(settings: Settings, on_ready: Callable[[AsgiServer], None] | None = None) -> None:
    """Serve the API alone (no collectors, no detection) until SIGINT or SIGTERM: ``secmon api``.

    Notifications are there to be listed and tested; alerts are notified by the instance whose
    detection raised them.
    """
    client = connect(settings.elasticsearch, max_retries=0)
    names = IndexNames(settings.elasticsearch.index_prefix)
    notifier = Notifier(settings.notifications, client, names.notifications)
    try:
        async with until_signalled() as stop:
            await install_templates(client, settings.elasticsearch)
            keys = KeyStore(client, names)
            await keys.ensure_index()
            await notifier.ensure_index()
            server = await start_api(settings, client, keys, notifier)
            freeze_startup_heap()
            if on_ready is not None:
                on_ready(server)
            try:
                await stop.wait()
            finally:
                await server.stop()
    finally:
        await notifier.aclose()
        await client.close()


@contextlib.asynccontextmanager
async def until_signalled() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM, while inside."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
