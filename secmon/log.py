"""Logs are a sentence plus fields: ``log.info("Listening.", addr=addr, protocol="udp")``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any


class FieldLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose keyword arguments become ``key=value`` fields after the sentence."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        std = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel", "extra") if k in kwargs}
        if kwargs:
            fields = " ".join(f"{key}={_render(value)}" for key, value in kwargs.items())
            std.setdefault("extra", {})["fields"] = dict(kwargs)
            msg = f"{msg} {fields}"
        return msg, std

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            msg, std = self.process(msg, kwargs)
            self.logger.log(level, msg, *args, **std)


def _render(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


def get_logger(name: str) -> FieldLogger:
    """The logger of module ``name``."""
    return FieldLogger(logging.getLogger(name), {})


def configure(level: str | int = "INFO", stream: Any = None, extra: Mapping[str, int] | None = None) -> None:
    """Send secmon's logs to ``stream`` (stderr) with a timestamp and the module name."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients narrate every request at INFO; keep them to warnings.
    for noisy, noisy_level in {"elastic_transport": logging.WARNING, "httpx": logging.WARNING, **(extra or {})}.items():
        logging.getLogger(noisy).setLevel(noisy_level)
