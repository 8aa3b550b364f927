"""Sources: where events enter secmon. Each module is one ``type:`` of the ``sources:`` config.

:data:`SOURCES` maps a ``type:`` to its module, imported only when a source of that type runs
(capture needs scapy, http needs the ASGI server). A module offers ``build(component, settings,
environment)``. A new source is its module, one line here, its settings model in
:mod:`~secmon.collect.sources.settings` and one test module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from secmon.auth import KeyStore
    from secmon.collect.sources.settings import SourceSettings
    from secmon.collect.topology import Pipeline

SOURCES: dict[str, str] = {
    "syslog": "secmon.collect.sources.syslog",
    "file": "secmon.collect.sources.file",
    "evtx": "secmon.collect.sources.evtx",
    "http": "secmon.collect.sources.http",
    "capture": "secmon.collect.sources.capture",
}


class Source(Protocol):
    """A running source: ``start`` begins receiving, ``stop`` ends it after submitting what it read."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SourceEnvironment:
    """What a source may need besides its settings.

    ``keys`` is None where there is no Elasticsearch (a collector-only agency).
    """

    pipeline: Pipeline
    state_dir: Path
    keys: KeyStore | None


def build_source(component: str, settings: SourceSettings, environment: SourceEnvironment) -> Source:
    """The source that ``settings.type`` names, configured as ``component``."""
    module = importlib.import_module(SOURCES[settings.type])
    source: Source = module.build(component, settings, environment)
    return source
