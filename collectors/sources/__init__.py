"""Sources: where events enter secmon. Each module is one ``type:`` of the ``sources:`` config."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from collectors.config import (
    CaptureSourceSettings,
    EvtxSourceSettings,
    FileSourceSettings,
    HttpSourceSettings,
    SourceSettings,
    SyslogSourceSettings,
)
from secmon.auth import KeyStore
from secmon.errors import ConfigError
from secmon.pipeline.pipeline import Pipeline


class Source(Protocol):
    """A running source: ``start`` begins receiving, ``stop`` ends it after submitting what it read."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_source(
    component: str, settings: SourceSettings, pipeline: Pipeline, state_dir: Path, keys: KeyStore | None
) -> Source:
    """The source that ``settings.type`` names; ``keys`` None where there is no Elasticsearch (an agency)."""
    if isinstance(settings, SyslogSourceSettings):
        from collectors.sources.syslog import SyslogSource

        return SyslogSource(component, settings, pipeline)
    if isinstance(settings, FileSourceSettings):
        from collectors.sources.file import FileSource

        return FileSource(component, settings, pipeline, state_dir)
    if isinstance(settings, EvtxSourceSettings):
        from collectors.sources.evtx import EvtxSource

        return EvtxSource(component, settings, pipeline, state_dir)
    if isinstance(settings, HttpSourceSettings):
        from collectors.sources.http import HttpSource

        if keys is None:
            raise ConfigError(
                f"sources.{component}: an http source checks API keys in Elasticsearch, "
                "which a collector-only agency (forward.url set) does not have"
            )
        return HttpSource(component, settings, pipeline, keys)
    if isinstance(settings, CaptureSourceSettings):
        from collectors.sources.capture import CaptureSource

        return CaptureSource(component, settings, pipeline)
    raise TypeError(f"no source for {type(settings).__name__}")
