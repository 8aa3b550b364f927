"""What the benchmarks that run secmon against Elasticsearch share: ports, plain indices, and cleaning up a run."""

from __future__ import annotations

import os
import socket

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.config import Settings
from secmon.log import get_logger
from secmon.store import IndexNames
from secmon.store.templates import index_settings, load_mapping

log = get_logger(__name__)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in these


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads, and its children it waited for)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # The command name in parentheses may hold spaces: count the fields after its closing one.
    fields = text[text.rfind(")") + 2 :].split()
    utime, stime, children_utime, children_stime = (int(value) for value in fields[11:15])
    return (utime + stime + children_utime + children_stime) / CLOCK_TICKS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connects(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


async def plain_event_indices(client: AsyncElasticsearch, settings: Settings, names: IndexNames) -> None:
    """Make secmon's event and dead-letter targets plain indices with their usual settings and mappings.

    secmon installs data-stream templates for them at start, at priority 200; these win, and a
    plain index can be deleted afterwards where (on this distribution) a data stream cannot.
    """
    for mapping, pattern in {"events": names.events_pattern, "deadletter": names.deadletter}.items():
        await client.indices.put_index_template(
            name=names.template(f"bench-plain-{mapping}"),
            index_patterns=[pattern],
            priority=500,
            template={"settings": index_settings(settings.elasticsearch), "mappings": load_mapping(mapping)},
        )


async def delete_run(client: AsyncElasticsearch, pattern: str) -> None:
    """Delete the indices, data streams and templates matching ``pattern``; what cannot be deleted is logged."""
    lenient = client.options(ignore_status=404)  # nothing created under this pattern is not an error
    try:
        resolved = await client.indices.resolve_index(name=pattern, expand_wildcards="all")
        plain = [index["name"] for index in resolved["indices"] if "data_stream" not in index]
        streams = [stream["name"] for stream in resolved["data_streams"]]
        if plain:
            # By name: wildcard deletes are refused where action.destructive_requires_name is set.
            await client.indices.delete(index=",".join(plain))
        if streams:
            try:
                await client.indices.delete_data_stream(name=",".join(streams))
            except ApiError as exc:  # a distribution without data stream deletion
                log.warning("The benchmark left data streams it cannot delete.", data_streams=streams, error=exc)
        templates = await lenient.indices.get_index_template(name=pattern, filter_path="index_templates.name")
        for template in (templates.body or {}).get("index_templates", []):
            await client.indices.delete_index_template(name=template["name"])
        # Component templates last: Elasticsearch keeps those an index template still uses.
        components = await lenient.cluster.get_component_template(name=pattern, filter_path="component_templates.name")
        for component in (components.body or {}).get("component_templates", []):
            await client.cluster.delete_component_template(name=component["name"])
    except (ApiError, TransportError) as exc:
        log.warning("Could not delete the benchmark's indices and templates.", pattern=pattern, error=exc)
