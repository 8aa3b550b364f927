"""What secmon keeps of a Sigma rule once loaded: plain data, so the rule cache can pickle it.

A base rule (:class:`Rule`) keeps metadata for alerts and its condition tree; a correlation
rule (:class:`CorrelationRule`) keeps its type, resolved references, fields, timespan and
condition. Both are here, below everything that loads or matches them, because a
:class:`RuleSet` holds both: :mod:`secmon.detection.correlation` loads and matches
correlations and imports this module, never the other way round.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from secmon.detection.ir import Node
from secmon.detection.logsource import LogsourceKey

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


class CorrelationType(StrEnum):
    """The correlation types of the Sigma specification."""

    EVENT_COUNT = "event_count"
    VALUE_COUNT = "value_count"
    TEMPORAL = "temporal"
    TEMPORAL_ORDERED = "temporal_ordered"
    VALUE_SUM = "value_sum"
    VALUE_AVG = "value_avg"
    VALUE_PERCENTILE = "value_percentile"
    VALUE_MEDIAN = "value_median"


# The types that measure a number of the field named in the condition.
NUMERIC_TYPES = (
    CorrelationType.VALUE_SUM,
    CorrelationType.VALUE_AVG,
    CorrelationType.VALUE_PERCENTILE,
    CorrelationType.VALUE_MEDIAN,
)
# A condition's operators, by the name the specification gives them.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """One comparison of a correlation condition: ``measure <op> value``."""

    op: str  # gt, gte, lt, lte, eq, neq
    value: float

    def holds(self, measure: float) -> bool:
        return bool(COMPARISONS[self.op](measure, self.value))


@dataclass(frozen=True, slots=True)
class CorrelationCondition:
    """When a window's measure fires: every threshold holds (``gt: 100, lte: 200`` is a range)."""

    thresholds: tuple[Threshold, ...]
    field: tuple[str, ...] = ()  # the measured field(s) of value_* types, named as in the hit
    percentile: float | None = None  # value_percentile (value_median: 50)

    def holds(self, measure: float) -> bool:
        for threshold in self.thresholds:  # noqa: SIM110 - per event; a generator costs twice as much
            if not COMPARISONS[threshold.op](measure, threshold.value):
                return False
        return True

    @property
    def upward(self) -> bool:
        """Whether only lower bounds: then the condition can be decided as events arrive."""
        return all(t.op in ("gt", "gte") for t in self.thresholds)


@dataclass(frozen=True, slots=True)
class CorrelationRule:
    """A loaded correlation rule; plain data, so the rule cache can pickle it.

    ``rule_refs`` are the resolved ids of the referenced rules (base rules or correlations).
    ``group_fields[i]`` and ``value_fields[i]`` say where the group-by values and the measured
    field are found for a match of ``rule_refs[i]``: secmon field names after the pipeline
    (and aliases), or, for a referenced correlation, keys of its hit's group. ``group_by``
    names the group-by entries in hits: the secmon field when every reference agrees,
    otherwise the name the rule gives (an alias).
    """

    id: str
    title: str
    level: str
    type: CorrelationType
    rule_refs: tuple[str, ...]
    group_by: tuple[str, ...]
    timespan: float
    condition: CorrelationCondition
    path: str
    name: str | None = None
    generate: bool = False
    group_fields: tuple[tuple[str, ...], ...] = ()
    value_fields: tuple[tuple[str, ...], ...] = ()
    tags: tuple[str, ...] = ()
    status: str = ""
    description: str = ""
    falsepositives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: str = ""

    @property
    def definition(self) -> tuple[object, ...]:
        """What the window state depends on: equal definitions can share state across a reload."""
        return (
            self.type,
            self.rule_refs,
            self.group_by,
            self.group_fields,
            self.value_fields,
            self.timespan,
            self.condition,
        )


@dataclass(slots=True)
class RuleSet:
    """The rules loaded from some folders, and the problems found there."""

    rules: list[Rule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files: int = 0
