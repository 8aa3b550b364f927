"""The main job that ``secmon up`` runs: Elasticsearch, the pipeline and its sources, detection,
notifications and the API, until SIGINT or SIGTERM; then it stops the sources, sends what is
buffered and stops what it started. ``secmon api`` runs the API alone (:func:`run_api`).

On a collector-only agency (``forward.url`` set), ``secmon up`` runs :func:`forwarding_service`
instead: its sources, the disk buffer and the forwarder to the central secmon, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from secmon.api import ApiServices
from secmon.auth import KeyStore
from secmon.bus.cluster import Cluster, connected
from secmon.collect.buffer import DiskBuffer
from secmon.collect.sinks import Sink, SinkEnvironment, build_sink
from secmon.collect.sources import Source, SourceEnvironment, build_source
from secmon.collect.telemetry import Telemetry
from secmon.collect.topology import Pipeline
from secmon.config import Settings
from secmon.console import create_site
from secmon.detection.catalog_store import CatalogFiles, CatalogMirror, RuleStore
from secmon.detection.stage import DetectionStage
from secmon.errors import ConfigError
from secmon.log import get_logger
from secmon.node import LocalNode
from secmon.notify import Notifier, register_metrics
from secmon.roles import CorrelateWorker, DetectWorker
from secmon.serving import AsgiServer, freeze_startup_heap
from secmon.store import IndexNames, cluster_health, cluster_url, connect, install_templates, retention_loop

log = get_logger(__name__)

DRAIN_ON_STOP_SECONDS = 10.0
WORKER_STOP_SECONDS = 30.0  # for a detect worker to store and commit what it took before it leaves


@dataclass(slots=True)
class Running:
    """What a running service is made of, for whoever drives it (``secmon up``, ``import``, tests)."""

    settings: Settings
    client: AsyncElasticsearch
    pipeline: Pipeline
    writer: Sink  # the Elasticsearch sink
    keys: KeyStore
    sources: dict[str, Source]
    detection: DetectionStage | None = None
    notifier: Notifier | None = None
    api: AsgiServer | None = None


@dataclass(slots=True)
class Store:
    """Elasticsearch as a service uses it: the client, the names, the API keys and the shared rule catalog."""

    client: AsyncElasticsearch
    names: IndexNames
    keys: KeyStore
    rules_mirror: CatalogMirror


@contextlib.asynccontextmanager
async def elasticsearch_store(settings: Settings) -> AsyncIterator[Store]:
    """Elasticsearch ready for events: the local node started if none is configured, templates, keys, rules.

    The shared rule catalog is mirrored into ``state_dir`` before anything is matched.
    """
    node: LocalNode | None = None
    if settings.elasticsearch.url is None:
        local = LocalNode(settings.elasticsearch.local)
        if (await asyncio.to_thread(local.start)).started:
            node = local  # started here, so stopped here
    client = connect(settings.elasticsearch, max_retries=0)
    names = IndexNames(settings.elasticsearch.index_prefix)
    try:
        await install_templates(client, settings.elasticsearch)
        keys = KeyStore(client, names)
        await keys.ensure_index()
        rules_mirror = CatalogMirror(RuleStore(client, names.rules), CatalogFiles(settings.state_dir))
        await rules_mirror.start()
        version, health = await cluster_health(client)
        log.info("Elasticsearch ready.", url=cluster_url(settings.elasticsearch), version=version, health=health)
        yield Store(client, names, keys, rules_mirror)
    finally:
        await client.close()
        if node is not None:
            await asyncio.to_thread(node.stop)


def load_detection(settings: Settings, telemetry: Telemetry) -> DetectionStage | None:
    """The detection stage over the configured and catalogued rules, or None when detection is off."""
    if not settings.detection.enabled:
        return None
    return DetectionStage.load(
        settings.detection,
        IndexNames(settings.elasticsearch.index_prefix).alerts,
        cache_dir=settings.state_dir / "rule-cache",
        telemetry=telemetry,
        state_dir=settings.state_dir,
    )


def background_tasks(
    settings: Settings, store: Store, detection: DetectionStage | None, notifier: Notifier | None
) -> list[asyncio.Task[None]]:
    """What runs beside the events: retention, rule reloads, the catalog's sync and notifications."""
    tasks = [
        asyncio.create_task(retention_loop(store.client, store.names, settings.retention), name="retention"),
        asyncio.create_task(store.rules_mirror.run(settings.detection.reload_interval), name="rule-sync"),
    ]
    if detection is not None:
        tasks.append(asyncio.create_task(detection.watch(), name="rule-reload"))
    if notifier is not None:
        tasks.append(asyncio.create_task(notifier.run(), name="notifications"))
        if detection is not None:
            detection.on_new_alerts = notifier.notify
    return tasks


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, *, with_sources: bool = True, buffer_dir: Path | None = None
) -> AsyncIterator[Running]:
    """Start Elasticsearch (if local), the writer, the buffer's drain and the sources; undo on exit.

    ``buffer_dir`` gives a one-off job (``secmon import``) a buffer of its own, apart from the
    service's, which another process may be using.
    """
    if settings.forward.url is not None:
        raise ConfigError(f"this configuration forwards events to {settings.forward.url}; it stores none itself")
    buffer = open_buffer(settings, buffer_dir)
    telemetry = Telemetry()
    detection = await asyncio.to_thread(load_detection, settings, telemetry)
    names = IndexNames(settings.elasticsearch.index_prefix)
    pipeline = Pipeline(names, buffer, telemetry, stages=[detection] if detection else [])
    sources: dict[str, Source] = {}
    stop_metrics = telemetry.serve(settings.metrics.address) if with_sources and settings.metrics.address else None
    notifier: Notifier | None = None
    api: AsgiServer | None = None
    try:
        async with elasticsearch_store(settings) as store:
            client = store.client
            if detection is not None:
                await detection.reload_if_changed()  # with the catalog's rules, mirrored by now
            # Only the service notifies and serves the API: not one-off jobs such as secmon import.
            if with_sources:
                notifier = Notifier(settings.notifications, client, names.notifications)
                await notifier.ensure_index()
                register_metrics(telemetry.registry)
            async with build_sink(settings, SinkEnvironment(names, client), "elasticsearch") as writer:
                batch_size = settings.writer.batch_size
                tasks = [asyncio.create_task(pipeline.drain(writer, batch_size=batch_size), name="drain")]
                tasks += background_tasks(settings, store, detection, notifier)
                try:
                    if with_sources and settings.api.enabled:
                        api = await start_api(
                            settings, client, store.keys, notifier, telemetry, rules_mirror=store.rules_mirror
                        )
                    if with_sources:
                        await start_sources(settings, pipeline, store.keys, sources)
                        freeze_startup_heap()
                    yield Running(settings, client, pipeline, writer, store.keys, sources, detection, notifier, api)
                finally:
                    await stop_sources(sources, pipeline)
                    if notifier is not None:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(notifier.join(), DRAIN_ON_STOP_SECONDS)
                    if api is not None:
                        await api.stop()
                    await cancel(tasks)
                    if notifier is not None:
                        await notifier.aclose()
    finally:
        if stop_metrics is not None:
            stop_metrics()
        buffer.close()


async def start_sources(
    settings: Settings, pipeline: Pipeline, keys: KeyStore | None, sources: dict[str, Source]
) -> None:
    """Build and start the configured sources into ``sources`` (so that a failure still stops those started)."""
    for component, source_settings in settings.sources.items():
        source = build_source(component, source_settings, SourceEnvironment(pipeline, settings.state_dir, keys))
        await source.start()
        sources[component] = source


@dataclass(slots=True)
class Forwarding:
    """What a collector-only agency runs: its sources, the pipeline and the forwarder."""

    settings: Settings
    pipeline: Pipeline
    forwarder: Sink  # the forward sink
    sources: dict[str, Source]


@contextlib.asynccontextmanager
async def forwarding_service(settings: Settings) -> AsyncIterator[Forwarding]:
    """Start the buffer's drain into the central secmon (``forward.url``) and the sources; undo on exit.

    No Elasticsearch, templates, detection, API, notifications or retention: the central does those.
    """
    names = IndexNames(settings.elasticsearch.index_prefix)
    buffer = open_buffer(settings)
    telemetry = Telemetry()
    pipeline = Pipeline(names, buffer, telemetry)
    stop_metrics = telemetry.serve(settings.metrics.address) if settings.metrics.address else None
    sources: dict[str, Source] = {}
    try:
        async with build_sink(settings, SinkEnvironment(names)) as forwarder:
            batch_size = settings.forward.batch_size
            drain = asyncio.create_task(pipeline.drain(forwarder, batch_size=batch_size), name="drain")
            try:
                await start_sources(settings, pipeline, None, sources)
                log.info("Forwarding events to the central secmon.", url=settings.forward.url, sources=list(sources))
                freeze_startup_heap()
                yield Forwarding(settings, pipeline, forwarder, sources)
            finally:
                await stop_sources(sources, pipeline)
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        buffer.close()


@dataclass(slots=True)
class RunningRoles:
    """What a process of the scale-out mode runs: some of collect, detect and api (None where not)."""

    settings: Settings
    cluster: Cluster
    pipeline: Pipeline | None = None  # collect: sources → Kafka
    sources: dict[str, Source] = field(default_factory=dict)
    detect: DetectWorker | None = None
    correlate: CorrelateWorker | None = None
    api: AsgiServer | None = None
    store: Store | None = None


@contextlib.asynccontextmanager
async def running_roles(settings: Settings) -> AsyncIterator[RunningRoles]:
    """Start this process's roles of the scale-out mode over the bus (``bus:`` set); undo on exit.

    The cluster is the configured one or the local broker; Elasticsearch is needed by detect and
    api (and by a collector's http source, for its senders' keys), so a syslog collector runs without it.
    """
    assert settings.bus is not None
    roles = set(settings.roles)
    telemetry = Telemetry()
    names = IndexNames(settings.elasticsearch.index_prefix)
    stop_metrics = telemetry.serve(settings.metrics.address) if settings.metrics.address else None
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lambda: stop_metrics() if stop_metrics is not None else None)
        cluster = await stack.enter_async_context(connected(settings.bus, settings.topic_prefix))
        running = RunningRoles(settings, cluster)
        # An http source checks its senders' API keys, which are in Elasticsearch.
        http_sources = any(source.type == "http" for source in settings.sources.values())
        if roles & {"detect", "api"} or ("collect" in roles and http_sources):
            store = running.store = await stack.enter_async_context(elasticsearch_store(settings))
            notifier = Notifier(settings.notifications, store.client, names.notifications)
            await notifier.ensure_index()
            stack.push_async_callback(notifier.aclose)
            detection: DetectionStage | None = None
            if "detect" in roles:
                detection = await asyncio.to_thread(load_detection, settings, telemetry)
                if detection is not None:
                    await detection.reload_if_changed()
                writer = await stack.enter_async_context(
                    build_sink(settings, SinkEnvironment(names, store.client), "elasticsearch")
                )
                running.detect = DetectWorker(cluster, settings.bus, detection, writer, names)
                _start_worker(stack, running.detect, "detect")
                if detection is not None:
                    running.correlate = CorrelateWorker(cluster, settings.bus, detection, writer)
                    _start_worker(stack, running.correlate, "correlate")
                register_metrics(telemetry.registry)
            stack.push_async_callback(
                cancel, background_tasks(settings, store, detection, notifier if "detect" in roles else None)
            )
            if "api" in roles and settings.api.enabled:
                running.api = await start_api(
                    settings, store.client, store.keys, notifier, telemetry, rules_mirror=store.rules_mirror
                )
                stack.push_async_callback(running.api.stop)
        if "collect" in roles:
            buffer = open_buffer(settings)
            stack.callback(buffer.close)
            pipeline = running.pipeline = Pipeline(names, buffer, telemetry)
            producer = await stack.enter_async_context(
                build_sink(settings, SinkEnvironment(names, cluster=cluster), "kafka")
            )
            drain = asyncio.create_task(pipeline.drain(producer, batch_size=settings.writer.batch_size), name="drain")
            stack.push_async_callback(cancel, [drain])
            stack.push_async_callback(stop_sources, running.sources, pipeline)
            await start_sources(settings, pipeline, running.store.keys if running.store else None, running.sources)
        log.info("Scale-out roles running.", roles=sorted(roles), bootstrap=cluster.bootstrap)
        freeze_startup_heap()
        yield running


def _start_worker(stack: contextlib.AsyncExitStack, worker: DetectWorker | CorrelateWorker, name: str) -> None:
    """Run ``worker`` until the stack unwinds; then let it finish and commit what it took, for a while.

    What it could not commit by then is handled again by the partition's next owner.
    """
    task = asyncio.create_task(worker.run(), name=name)
    task.add_done_callback(_report_failure)

    async def stop() -> None:
        worker.consumer.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), WORKER_STOP_SECONDS)
        except Exception:  # too slow (Elasticsearch away), or a failure it logged when it happened
            await cancel([task])
        await worker.close()

    stack.push_async_callback(stop)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "A worker stopped on an error; restart this process.", worker=task.get_name(), exc_info=task.exception()
        )


def open_buffer(settings: Settings, directory: Path | None = None) -> DiskBuffer:
    """The disk buffer, in ``state_dir/buffer`` unless ``directory`` says otherwise."""
    return DiskBuffer(
        directory or settings.state_dir / "buffer",
        max_bytes=settings.buffer.max_bytes,
        segment_bytes=settings.buffer.segment_bytes,
        fsync_interval=settings.buffer.fsync_interval,
    )


async def stop_sources(sources: dict[str, Source], pipeline: Pipeline) -> None:
    """Stop the sources, then give the buffer a while to drain; what stays is sent at the next start.

    The sources stop together, each delivering what already reached it within its ``stop_grace``
    (so a stop waits for the longest grace, not their sum) while the buffer keeps draining.
    """
    outcomes = await asyncio.gather(*(source.stop() for source in sources.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome  # after every other source has stopped
    if not await pipeline.wait_drained(DRAIN_ON_STOP_SECONDS):
        log.warning(
            "Stopping with events still buffered; they are sent at the next start.",
            bytes=pipeline.buffer.pending_bytes,
        )


async def start_api(
    settings: Settings,
    client: AsyncElasticsearch,
    keys: KeyStore,
    notifier: Notifier | None,
    telemetry: Telemetry | None = None,
    *,
    rules_mirror: CatalogMirror | None = None,
) -> AsgiServer:
    """The API, serving on ``api.address`` (with the pipeline's metrics when it runs here)."""
    services = ApiServices.build(settings, client, keys, rules_mirror)
    services.notifier = notifier
    if telemetry is not None:
        services.registries.append(telemetry.registry)
    await services.prepare()
    api = settings.api
    server = AsgiServer(create_site(services), api.address, name="api", tls_cert=api.tls_cert, tls_key=api.tls_key)
    await server.start()
    return server


async def run_service(
    settings: Settings,
    on_ready: Callable[[Running], None] | None = None,
    monitor: Callable[[Running], Coroutine[Any, Any, None]] | None = None,
    on_roles_ready: Callable[[RunningRoles], None] | None = None,
    monitor_roles: Callable[[RunningRoles], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM; ``monitor`` (a status display) runs alongside until then.

    A collector-only agency (``forward.url`` set) runs :func:`forwarding_service`, which logs
    where it forwards; ``on_ready`` and ``monitor`` are for the full service and are not called.
    With a ``bus:`` section the process runs its roles (:func:`running_roles`), tells ``on_roles_ready``
    and runs ``monitor_roles`` alongside.
    """
    if settings.bus is not None:
        async with until_signalled() as stop, running_roles(settings) as roles:
            if on_roles_ready is not None:
                on_roles_ready(roles)
            watching = asyncio.create_task(monitor_roles(roles), name="monitor") if monitor_roles else None
            try:
                await stop.wait()
            finally:
                if watching is not None:
                    await cancel([watching])
            log.info("Stopping: handing over what is not committed.")
        return
    if settings.forward.url is not None:
        async with until_signalled() as stop, forwarding_service(settings):
            await stop.wait()
            log.info("Stopping: forwarding what is in flight.")
        return
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
    rules_mirror = CatalogMirror(RuleStore(client, names.rules), CatalogFiles(settings.state_dir))
    syncing: asyncio.Task[None] | None = None
    try:
        async with until_signalled() as stop:
            await install_templates(client, settings.elasticsearch)
            keys = KeyStore(client, names)
            await keys.ensure_index()
            await notifier.ensure_index()
            server = await start_api(settings, client, keys, notifier, rules_mirror=rules_mirror)
            syncing = asyncio.create_task(rules_mirror.run(settings.detection.reload_interval), name="rule-sync")
            freeze_startup_heap()
            if on_ready is not None:
                on_ready(server)
            try:
                await stop.wait()
            finally:
                await server.stop()
    finally:
        if syncing is not None:
            syncing.cancel()
            await asyncio.gather(syncing, return_exceptions=True)
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
