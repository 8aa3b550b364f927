"""The loaded rule set, cached on disk so a restart does not parse thousands of rules again.

pySigma takes seconds for the SigmaHQ set; unpickling its translation takes a fraction of one.
The key covers everything the translation depends on: every rule file's path and content, the
logsource table, the pipeline files, the placeholder values, the versions of secmon and
pySigma, and the source of secmon's detection package, subpackages included (the code that
loads and translates, which changes between releases without a new version number during
development, and did once change which events a logsource selects). Any change gives a new
key; a cache file that cannot be read is simply rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

import orjson

import secmon
from secmon.detection.loader import rule_files
from secmon.detection.rules import RuleSet
from secmon.log import get_logger

log = get_logger(__name__)

_FORMAT = 2  # bump when RuleSet's pickled shape changes


def cache_key(
    rule_paths: Sequence[Path],
    data_files: Sequence[Path],
    placeholders: Mapping[str, Sequence[str]] | None,
) -> str:
    """A digest of everything a loaded rule set depends on."""
    digest = hashlib.sha256()
    header = [_FORMAT, secmon.__version__, version("pysigma"), sorted((placeholders or {}).items())]
    digest.update(orjson.dumps(header, option=orjson.OPT_NON_STR_KEYS))
    digest.update(_detection_code_digest())
    for path in [*rule_files(rule_paths), *data_files]:
        digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


@functools.cache
def _detection_code_digest() -> bytes:
    """A digest of this package's modules: a rule set translated by other code is not reused."""
    return source_digest(Path(__file__).parent)


def source_digest(package: Path) -> bytes:
    """A digest of the Python modules under ``package``, its subpackages' too, each named by its path."""
    digest = hashlib.sha256()
    for module in sorted(package.rglob("*.py")):
        name = module.relative_to(package).as_posix()  # correlation/matching.py is not matching.py
        digest.update(name.encode() + b"\0" + module.read_bytes())
    return digest.digest()


def cached_ruleset(cache_dir: Path | None, key: str, build: Callable[[], RuleSet]) -> tuple[RuleSet, bool]:
    """The rule set stored under ``key``, or ``build()``'s result, stored; and whether it was cached."""
    if cache_dir is None:
        return build(), False
    path = cache_dir / f"rules-{key[:32]}.pickle"
    try:
        with path.open("rb") as handle:
            ruleset = pickle.load(handle)
        if isinstance(ruleset, RuleSet):
            return ruleset, True
    except FileNotFoundError:
        pass
    except Exception as exc:
        log.warning("Ignoring an unreadable rule cache.", path=str(path), error=repr(exc))
    ruleset = build()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob("rules-*.pickle"):
            old.unlink(missing_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=cache_dir, delete=False) as temporary:
            pickle.dump(ruleset, temporary, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary.name, path)
    except OSError as exc:
        log.warning("Cannot write the rule cache; the next start parses the rules again.", error=repr(exc))
    return ruleset, False
