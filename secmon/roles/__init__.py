"""The workers of the scale-out mode, between Kafka and Elasticsearch.

    collectors ──▶ <prefix>.events ──▶ DetectWorker ──▶ Elasticsearch (events, alerts)
                                          │
                                          └──▶ <prefix>.correlation ──▶ CorrelateWorker ──▶ Elasticsearch

A collect role is the ordinary pipeline with the Kafka sink (:mod:`secmon.collect.sinks.kafka`);
:func:`secmon.service.running_roles` puts the roles of one process together.
"""

from secmon.roles.correlate import CorrelateWorker
from secmon.roles.detect import DetectWorker

__all__ = ["CorrelateWorker", "DetectWorker"]
