"""secmon's exception tree: every error secmon raises on purpose is a :class:`SecmonError`.

Classes are defined here unless a [module] follows them (their subclasses then live there too):

    SecmonError
    ├── ConfigError          an invalid configuration file or environment override
    ├── NodeError            the local Elasticsearch node cannot be fetched, started or stopped
    │   └── BrokerError          the local Kafka broker cannot be fetched, started or stopped
    ├── StoreError           Elasticsearch refused an administrative call (templates, status)
    │   ├── IndexNotReady        indices whose primary shards did not start in time (named)
    │   └── KeyStoreUnavailable  [secmon.auth.keys] no API key can be checked: Elasticsearch is not answering
    ├── RuleError            a Sigma rule cannot be loaded (the message ends with its location)
    ├── CatalogError         [secmon.detection.catalog] a rule catalog change or look-up that cannot be done
    │   ├── RuleNotFound         no such rule
    │   ├── RuleConflict         the change conflicts with the rule's origin or with another rule
    │   └── RuleRefused          the rule text does not load: its problems, each with its line
    ├── MappingError         [secmon.collect.transforms.normalize_winlog.mappings] an invalid winlog mapping file
    ├── IngestError          an input cannot be read at all
    │   └── CaptureError         [secmon.collect.transforms.packets.decode] a capture file unreadable to its end
    ├── NotificationError    [secmon.notify.notifier] a notification request that cannot be carried out
    │   └── UnknownChannelError  no notification channel of that name (also a LookupError)
    ├── TriageError          [secmon.triage.workflow] a triage change the workflow does not allow (also a ValueError)
    ├── InvalidQuery         [secmon.triage.query] a filter, cursor or query string that cannot run (also a ValueError)
    ├── AlertNotFound        [secmon.triage.store] no alert of that id in the caller's scope (also a LookupError)
    ├── Problem              [secmon.serving.problems] an HTTP request refused, answered as problem details
    ├── CollectBenchError    [secmon.bench.collect] a collector did not store every line it was sent
    ├── PcapBenchError       [secmon.bench.pcap] a packet benchmark's input cannot be built or a run failed
    └── ScaleBenchError      [secmon.bench.scale] a scale-out configuration did not start or store every line

Failures of a single event are not exceptions: they are counted and dead-lettered. The HTTP
applications answer each of these errors as a problem (:mod:`secmon.serving.problems`).
"""

from __future__ import annotations


class SecmonError(Exception):
    """Base class of every error secmon raises on purpose."""


class ConfigError(SecmonError):
    """The configuration is invalid; the message names the file, the key and the problem."""


class NodeError(SecmonError):
    """The local Elasticsearch node could not be fetched, started or stopped."""


class BrokerError(NodeError):
    """The local Kafka broker could not be fetched, started or stopped (a local node, like Elasticsearch's)."""


class StoreError(SecmonError):
    """Elasticsearch refused an administrative request."""


class IndexNotReady(StoreError):
    """Indices stayed unsearchable: their primary shards did not start within the bound."""

    def __init__(self, indices: list[str], waited: float) -> None:
        self.indices = indices
        self.waited = waited
        super().__init__(
            f"{', '.join(indices)} not searchable after {waited:g}s: a primary shard has not started "
            "(Elasticsearch is still allocating it, or cannot; GET _cluster/allocation/explain says why)"
        )


class RuleError(SecmonError):
    """A Sigma rule (or a detection data file) could not be loaded; the message ends with its location."""

    def __init__(self, reason: str, *, path: str, line: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{reason} in {where}")


class IngestError(SecmonError):
    """An input could not be read at all (as opposed to one bad event in it)."""
