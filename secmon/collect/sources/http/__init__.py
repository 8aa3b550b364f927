"""The HTTP source: NDJSON on ``/ingest``, and enough of Elasticsearch's API for log shippers.

Endpoints (all but ``/healthz`` need an API key of role agency or admin):

* ``POST /ingest`` and ``POST /ingest/{format}``: NDJSON, one event per line (:mod:`.ingest`).
* ``POST|PUT /_bulk`` and ``/{index}/_bulk``: Elasticsearch's bulk API, answered in its shape,
  so Filebeat, Winlogbeat, Vector and Fluent Bit ship to secmon with their Elasticsearch output
  (:mod:`.bulk`).
* The set-up calls those shippers make first, answered as a healthy Elasticsearch 8.19 would
  (:mod:`.elasticsearch_api`).
* ``GET /healthz``.

A request is answered once its events are durable in the disk buffer, never before: a sender
that got no answer sends again. A line or bulk item secmon cannot take is refused alone,
reported in the answer and dead-lettered; the rest of the request is stored. A body that cannot
be read at all (:mod:`.body`: too large, a gzip bomb, bad gzip, not UTF-8, binary, empty) is
refused whole with problem details (RFC 9457), in Elasticsearch's error shape too for the
Elasticsearch endpoints. What every endpoint shares (the API-key check, the body, the rate
limit) is :mod:`.intake`; the application and the source are :mod:`.app`.
"""

from secmon.collect.sources.http.app import HttpSource, build, create_ingest_app

__all__ = ["HttpSource", "build", "create_ingest_app"]
