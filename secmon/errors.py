"""secmon's exception tree.

    SecmonError
    ├── ConfigError      an invalid configuration file or environment override
    ├── NodeError        the local Elasticsearch node cannot be fetched, started or stopped
    ├── StoreError       Elasticsearch refused an administrative call (templates, status)
    │   └── IndexNotReady    indices whose primary shards did not start in time (named)
    ├── RuleError        a Sigma rule cannot be loaded
    └── IngestError      an input cannot be read at all

Failures of a single event are not exceptions: they are counted and dead-lettered.
"""

from __future__ import annotations


class SecmonError(Exception):
    """Base class of every error secmon raises on purpose."""


class ConfigError(SecmonError):
    """The configuration is invalid; the message names the file, the key and the problem."""


class NodeError(SecmonError):
    """The local Elasticsearch node could not be fetched, started or stopped."""


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
