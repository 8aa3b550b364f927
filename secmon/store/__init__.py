"""Storage in Elasticsearch: templates, the acknowledged bulk writer, retention and inventory."""

from secmon.store.client import cluster_health, cluster_url, connect
from secmon.store.documents import Document, EncodedSource, Outcome, document_id, source_json
from secmon.store.names import IndexNames, dataset_slug
from secmon.store.retention import enforce_retention, retention_loop
from secmon.store.templates import install_templates
from secmon.store.writer import BulkWriter, WriterStats

__all__ = [
    "BulkWriter",
    "Document",
    "EncodedSource",
    "IndexNames",
    "Outcome",
    "WriterStats",
    "cluster_health",
    "cluster_url",
    "connect",
    "dataset_slug",
    "document_id",
    "enforce_retention",
    "install_templates",
    "retention_loop",
    "source_json",
]
