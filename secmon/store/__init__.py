"""Storage in Elasticsearch: templates, documents, retention, inventory and readiness."""

from secmon.store.client import cluster_health, cluster_url, connect
from secmon.store.documents import Document, EncodedSource, Outcome, document_id, plain_source, source_json
from secmon.store.names import IndexNames, dataset_slug
from secmon.store.ready import READY_SECONDS, REQUEST_READY_SECONDS, read_when_ready, wait_for_primaries
from secmon.store.retention import enforce_retention, retention_loop
from secmon.store.templates import install_templates

__all__ = [
    "READY_SECONDS",
    "REQUEST_READY_SECONDS",
    "Document",
    "EncodedSource",
    "IndexNames",
    "Outcome",
    "cluster_health",
    "cluster_url",
    "connect",
    "dataset_slug",
    "document_id",
    "enforce_retention",
    "install_templates",
    "plain_source",
    "read_when_ready",
    "retention_loop",
    "source_json",
    "wait_for_primaries",
]
