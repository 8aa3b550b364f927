"""What secmon keeps of a Sigma rule once loaded: metadata for alerts, and its condition tree."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from secmon.detection.ir import Node
from secmon.detection.logsource import LogsourceKey

if TYPE_CHECKING:
    from secmon.detection.correlation import CorrelationRule

_TECHNIQUE = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


def techniques_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    """ATT&CK technique ids from Sigma tags (``attack.t1059.001`` → ``T1059.001``)."""
    found = (_TECHNIQUE.match(tag) for tag in tags)
    return tuple(m.group(1).upper() for m in found if m)


@dataclass(frozen=True, slots=True)
class Rule:
    """A loaded detection rule, ready to compile; plain data, so the rule cache can store it."""

    id: str
    title: str
    level: str
    status: str
    path: str
    logsource: LogsourceKey
    condition: Node
    name: str | None = None  # Sigma's optional name, by which correlation rules may refer to it
    description: str = ""
    tags: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: str = ""

    @property
    def techniques(self) -> tuple[str, ...]:
        """ATT&CK technique ids from the tags (``attack.t1059.001`` → ``T1059.001``)."""
        return techniques_of(self.tags)


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """A rule file (or one rule in it) that was not loaded, and why."""

    path: str
    reason: str
    kind: str  # a short category for counting: yaml, sigma, logsource, unsupported, duplicate
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class RuleSet:
    """The rules loaded from some folders, and the problems found there."""

    rules: list[Rule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files: int = 0
