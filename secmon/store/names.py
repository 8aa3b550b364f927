"""Names of the indices, data streams and templates secmon creates, all under one prefix."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^a-z0-9._]+")


@dataclass(frozen=True, slots=True)
class IndexNames:
    """Every Elasticsearch name secmon uses, derived from ``elasticsearch.index_prefix``."""

    prefix: str

    @property
    def events_pattern(self) -> str:
        """Pattern matching every event data stream."""
        return f"{self.prefix}-events-*"

    def events(self, dataset: str | None) -> str:
        """The data stream holding events of ``dataset`` (``event.dataset``)."""
        return f"{self.prefix}-events-{dataset_slug(dataset)}"

    @property
    def alerts(self) -> str:
        """The alerts index (a plain index: triage updates alerts in place)."""
        return f"{self.prefix}-alerts"

    @property
    def deadletter(self) -> str:
        """The data stream of rejected documents, with their original and the reason."""
        return f"{self.prefix}-deadletter"

    @property
    def notifications(self) -> str:
        """The index recording each notification delivery (and failure)."""
        return f"{self.prefix}-notifications"

    @property
    def rules(self) -> str:
        """The rule catalog shared by every instance: uploaded rules and disabled rule ids."""
        return f"{self.prefix}-rules"

    @property
    def all_pattern(self) -> str:
        """Pattern matching every index and data stream secmon owns."""
        return f"{self.prefix}-*"

    def template(self, role: str) -> str:
        return f"{self.prefix}-{role}"


@functools.lru_cache(maxsize=1024)  # per event, and there are few datasets
def dataset_slug(dataset: str | None) -> str:
    """``event.dataset`` made safe for a data stream name (lowercase, no separators but . and _)."""
    slug = _UNSAFE.sub("_", (dataset or "generic").lower()).strip("._")
    return slug[:100] or "generic"
