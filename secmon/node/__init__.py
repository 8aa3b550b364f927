"""The local Elasticsearch node secmon runs when no cluster is configured."""

from secmon.node.distribution import ensure_distribution
from secmon.node.local import LocalNode, NodeStatus

__all__ = ["LocalNode", "NodeStatus", "ensure_distribution"]
