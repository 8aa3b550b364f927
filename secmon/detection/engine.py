"""The streaming matcher: which loaded rules an event matches.

An event is routed to the logsources it belongs to (a channel and event id, a dataset); each
logsource has a :class:`RuleIndex` over its rules; only the candidates the index returns are
evaluated, with their compiled condition. Cost per event therefore grows with the rules that
could match it, not with the size of the rule set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from secmon.detection.compile import Predicate, compile_node
from secmon.detection.fields import EventView
from secmon.detection.logsource import LogsourceKey, LogsourceMap
from secmon.detection.prefilter import RuleIndex, anchor_of
from secmon.detection.rules import Rule


class _Partition:
    """The rules of one logsource, indexed."""

    __slots__ = ("index", "predicates", "rules")

    def __init__(self, rules: Sequence[Rule], predicates: Sequence[Predicate]) -> None:
        self.rules = list(rules)
        self.predicates = list(predicates)
        self.index = RuleIndex([anchor_of(rule.condition) for rule in rules])


class Engine:
    """Matches events against compiled rules; build one per rule set (it is immutable)."""

    def __init__(self, rules: Sequence[Rule], logsources: LogsourceMap) -> None:
        self.rules = list(rules)
        self.logsources = logsources
        grouped: dict[LogsourceKey, list[Rule]] = {}
        for rule in rules:
            grouped.setdefault(rule.logsource, []).append(rule)
        self._partitions = {
            key: _Partition(members, [compile_node(r.condition) for r in members]) for key, members in grouped.items()
        }

    def match(self, event: Mapping[str, Any]) -> list[Rule]:
        """The rules ``event`` matches, in rule-set order within each logsource."""
        view = EventView(event)
        matched: list[Rule] = []
        for key in self.logsources.keys_of(view):
            partition = self._partitions.get(key)
            if partition is None:
                continue
            predicates = partition.predicates
            for position in sorted(partition.index.candidates(view)):
                if predicates[position](view):
                    matched.append(partition.rules[position])
        return matched
