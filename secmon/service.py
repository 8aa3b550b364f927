"""The main job that ``secmon up`` runs: Elasticsearch, storage and, as they land, collectors,
detection and the API, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from secmon.config import Settings
from secmon.log import get_logger
from secmon.node import LocalNode
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


async def run_service(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Run until a stop signal, then flush what is in flight and stop what was started."""
    node: LocalNode | None = None
    if settings.elasticsearch.url is None:
        node = LocalNode(settings.elasticsearch.local)
        started_here = node.pid() is None
        await asyncio.to_thread(node.start)
        if not started_here:
            node = None  # someone else's node: leave it running when we stop
    client = connect(settings.elasticsearch, max_retries=0)
    names = IndexNames(settings.elasticsearch.index_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await install_templates(client, settings.elasticsearch)
        version, health = await cluster_health(client)
        log.info("Elasticsearch ready.", url=cluster_url(settings.elasticsearch), version=version, health=health)
        async with BulkWriter(client, settings.writer, names):
            retention = asyncio.create_task(retention_loop(client, names, settings.retention), name="retention")
            if on_ready is not None:
                on_ready(cluster_url(settings.elasticsearch))
            await stop.wait()
            log.info("Stopping: flushing what is in flight.")
            retention.cancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await client.close()
        if node is not None:
            await asyncio.to_thread(node.stop)
