"""What the file-reading sources share: which files their globs name, and their checkpoint file."""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def matching_paths(include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The paths the ``include`` globs match and the ``exclude`` globs do not, sorted (``**`` recurses)."""
    paths = {p for pattern in include for p in glob.glob(pattern, recursive=True)}
    paths -= {p for pattern in exclude for p in glob.glob(pattern, recursive=True)}
    return sorted(paths)


def load_checkpoints(path: Path) -> dict[str, dict[str, Any]]:
    """The checkpoints saved in ``path``; none when it is missing or unreadable (read from the start)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_checkpoints(path: Path, checkpoints: dict[str, dict[str, Any]]) -> None:
    """Replace ``path`` with ``checkpoints`` atomically: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(checkpoints))
    temporary.replace(path)
