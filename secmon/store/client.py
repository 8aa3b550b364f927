"""Connecting to Elasticsearch: the configured cluster, or the local node."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.serializer import OrjsonSerializer

from secmon.config import ElasticsearchSettings


def cluster_url(settings: ElasticsearchSettings) -> str:
    """The configured cluster's URL, or the local node's when none is configured."""
    return settings.url or f"http://{settings.local.host}:{settings.local.port}"


def connect(settings: ElasticsearchSettings, *, max_retries: int = 3) -> AsyncElasticsearch:
    """An async client for the configured cluster (API key or basic auth, CA, TLS verification)."""
    options: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": max_retries,
        "retry_on_timeout": max_retries > 0,
        "serializer": OrjsonSerializer(),
    }
    if settings.api_key:
        options["api_key"] = settings.api_key
    elif settings.username:
        options["basic_auth"] = (settings.username, settings.password or "")
    if settings.ca_certs:
        options["ca_certs"] = str(settings.ca_certs)
    if cluster_url(settings).startswith("https://"):
        options["verify_certs"] = settings.verify_certs
    return AsyncElasticsearch(cluster_url(settings), **options)


async def cluster_health(client: AsyncElasticsearch) -> tuple[str, str]:
    """The cluster's Elasticsearch version and health colour."""
    # The integration-test distribution has no root endpoint (GET /): read the version from _nodes.
    nodes = await client.nodes.info(node_id="_local", filter_path="nodes.*.version")
    local: dict[str, Any] = next(iter(nodes.body.get("nodes", {}).values()), {})
    version = local.get("version", "unknown")
    health = await client.cluster.health()
    return str(version), str(health.body.get("status", "unknown"))
