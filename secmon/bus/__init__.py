"""The event bus: a local Kafka broker secmon runs like its local Elasticsearch node, and the clients of a cluster."""

from secmon.bus.client import consumer, producer
from secmon.bus.distribution import ensure_distribution
from secmon.bus.local import BrokerStatus, LocalKafka

__all__ = ["BrokerStatus", "LocalKafka", "consumer", "ensure_distribution", "producer"]
