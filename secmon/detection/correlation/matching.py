"""Matching correlation rules over the stream of matched events, in event-time windows.

:class:`CorrelationEngine` sees every event with the base rules it matched. Each
correlation keeps one window per group-by value (``source.ip=10.0.0.5``) and decides in one
of two ways, both on event time (the ``timestamp`` passed in, never the wall clock):

* **As events arrive** when the condition only has lower bounds (``gt``/``gte``, and the
  temporal types' default "all rules"): a sliding window, the events of the last
  ``timespan`` before the group's newest event, is checked on every event, so a burst fires
  wherever it falls; there are no fixed buckets for it to straddle.
* **When the window closes** when the condition has an upper bound or is ``eq``/``neq``
  (``lt: 5`` cannot be known while events still arrive): the window opens at the group's
  first event and closes ``timespan`` later, either when a later event of the group arrives
  or when the newest event time seen (any group) is ``lateness`` seconds past its end; in a
  quiet stream call :meth:`CorrelationEngine.expire` with the wall clock minus ``lateness``.

After a hit the group's window is emptied and the group cannot fire again until ``timespan``
has passed (in event time) since the hit, counting only events after the hit: a burst gives
one hit, and a burst that goes on gives one hit per ``timespan``, each with fresh evidence.

Events out of order: an event older than its group's window (``timestamp`` before the
group's newest event minus ``timespan``, or before an open window's start) is dropped and
counted in ``late_events``; a late event inside the window is inserted in time order.

A hit carries the window's events as evidence (the first 99 ids and the last; for
``temporal_ordered`` only the events of the chain, in order) and, for a chained correlation,
the events behind the inner hit.

State is in memory only, bounded by ``max_groups`` windows (least recently updated evicted,
counted in ``evicted``) and ``max_events_per_group`` events per window (oldest dropped,
counted in ``truncated``; count conditions always keep threshold + 1, so they stay exact).
Groups idle for longer than their timespan are forgotten as event time moves on.

A restart loses the open windows. A burst that straddles the restart is judged on its part
after the restart: a brute force that goes on fires when it reaches the threshold again (at
most one timespan late), one that ends sooner is missed, and the first half of a temporal
pair seen before the restart is forgotten. Persisting windows would cost a write per
matching event to narrow a gap of one timespan at each restart; secmon accepts the gap, as
a stream processor without checkpoints does. On a rule reload
:meth:`CorrelationEngine.reloaded` keeps the windows of correlations whose definition is
unchanged (type, references, fields, timespan, condition: a new title or level keeps them)
and drops the others.

``generate``: per the specification a rule referenced by correlations is not an alert of its
own unless one of them says ``generate: true``; :attr:`CorrelationEngine.silent_rule_ids`
lists the base rules and correlations whose matches and hits are therefore not alerts.
:meth:`CorrelationEngine.observe` returns every hit, silent ones too; the caller filters.
The engine is not thread-safe: one detection task owns it.

"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import operator
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secmon.detection.fields import EventView
from secmon.detection.rules import NUMERIC_TYPES, CorrelationRule, CorrelationType, Rule

__all__ = ["CorrelationEngine", "CorrelationHit"]

MAX_EVIDENCE = 100  # event ids kept in a hit: the first 99 and the last (the one that fired it)

_TEMPORAL = (CorrelationType.TEMPORAL, CorrelationType.TEMPORAL_ORDERED)


@dataclass(frozen=True, slots=True)
class CorrelationHit:
    """A correlation rule fired for one group: its events and the measured value."""

    rule: CorrelationRule
    group: dict[str, str]
    event_ids: tuple[str, ...]
    first: float
    last: float
    value: float


# A window entry: event time, arrival sequence (keeps ties in arrival order), the position of
# the referenced rule that matched, the measured value, and the event ids it stands for.
_Entry = tuple[float, int, int, Any, tuple[str, ...]]
_Source = EventView | CorrelationHit


def _order(entry: _Entry) -> tuple[float, int]:
    return entry[0], entry[1]


class _Plan:
    """A correlation rule prepared for matching."""

    __slots__ = ("cap", "dedupe", "index", "kind", "measures_field", "rule", "upward")

    def __init__(self, rule: CorrelationRule, index: int, max_events: int) -> None:
        self.rule = rule
        self.index = index
        self.kind = rule.type
        self.upward = rule.condition.upward
        self.measures_field = rule.type is CorrelationType.VALUE_COUNT or rule.type in NUMERIC_TYPES
        # Distinct counts keep only the newest entry per value (per rule for temporal):
        # exact for the count, and it bounds the window by the number of distinct values.
        self.dedupe = (
            "value"
            if rule.type is CorrelationType.VALUE_COUNT
            else "ref"
            if rule.type is CorrelationType.TEMPORAL
            else None
        )
        cap = max_events
        if rule.type in (CorrelationType.EVENT_COUNT, CorrelationType.VALUE_COUNT):
            # A count above the largest threshold decides every comparison: keep threshold + 1.
            cap = max(cap, int(max(t.value for t in rule.condition.thresholds)) + 1)
        self.cap = cap


class _Window:
    """One group's events of one correlation, in event-time order, with running aggregates."""

    __slots__ = ("deadline", "entries", "generation", "latest", "muted_until", "newest", "start", "total")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.latest: dict[Any, _Entry] = {}  # dedupe key → its entry
        self.total = 0.0  # sum of numeric values
        self.newest = -math.inf
        self.muted_until = -math.inf
        self.start = -math.inf  # window closed when deadline is None
        self.deadline: float | None = None
        self.generation = 0

    def clear(self) -> None:
        self.entries = []
        self.latest = {}
        self.total = 0.0


class CorrelationEngine:
    """Evaluates correlation rules over the stream of matched events; build one per rule set.

    Counters (monotonic, kept across :meth:`reloaded`): ``evicted`` groups, ``late_events``
    dropped, ``skipped_events`` without a group-by or measured field, ``truncated`` entries
    dropped by ``max_events_per_group``.
    """

    def __init__(
        self,
        rules: Sequence[CorrelationRule],
        *,
        max_groups: int = 100_000,
        max_events_per_group: int = 10_000,
        lateness: float = 60.0,
    ) -> None:
        self.rules = list(rules)
        self.max_groups = max_groups
        self.max_events_per_group = max_events_per_group
        self.lateness = lateness
        self.evicted = 0
        self.late_events = 0
        self.skipped_events = 0
        self.truncated = 0
        self.watermark = -math.inf  # the newest event time seen
        self._plans = [_Plan(rule, i, max_events_per_group) for i, rule in enumerate(_topological(self.rules))]
        self._consumers: dict[str, list[tuple[int, int]]] = {}  # referenced id → (plan, position)
        for plan in self._plans:
            for position, ref in enumerate(plan.rule.rule_refs):
                self._consumers.setdefault(ref, []).append((plan.index, position))
        self._groups: OrderedDict[tuple[str, tuple[str, ...]], _Window] = OrderedDict()
        self._deadlines: list[tuple[float, int, str, tuple[str, ...]]] = []  # deadline, generation, group
        self._seq = itertools.count()
        self._plan_by_id = {plan.rule.id: plan for plan in self._plans}
        self.silent_rule_ids = _silent(self.rules)
        # Windows closed by the clock: any event later in time (matching or not) may decide one.
        self.decides_at_close = any(not plan.upward for plan in self._plans)

    @property
    def groups(self) -> int:
        """How many group windows are tracked."""
        return len(self._groups)

    def observe(
        self, matched: Sequence[Rule], event: Mapping[str, Any], event_id: str, timestamp: float
    ) -> list[CorrelationHit]:
        """Feed one event and the base rules it matched; the correlations that fired because of it."""
        return self.observe_refs([rule.id for rule in matched], event, event_id, timestamp)

    def observe_refs(
        self,
        refs: Iterable[str],
        event: Mapping[str, Any],
        event_id: str,
        timestamp: float,
        only: Container[str] | None = None,
    ) -> list[CorrelationHit]:
        """:meth:`observe` by the ids of the matched rules; ``only`` limits it to some correlations.

        ``only`` lets a worker of the scale-out mode count the correlations routed to it and no
        others (their groups are counted where their keys are routed).
        """
        hits: list[CorrelationHit] = []
        if timestamp > self.watermark:
            self.watermark = timestamp
            if self._deadlines and self._deadlines[0][0] < timestamp - self.lateness:
                hits += self.expire(timestamp - self.lateness)
            self._sweep(timestamp - self.lateness)
        pending: dict[int, list[tuple[int, _Source, float, tuple[str, ...]]]] = {}
        view: EventView | None = None
        for rule_id in refs:
            consumers = self._consumers.get(rule_id)
            if consumers:
                view = view or EventView(event)
                for plan_index, position in consumers:
                    if only is None or self._plans[plan_index].rule.id in only:
                        pending.setdefault(plan_index, []).append((position, view, timestamp, (event_id,)))
        if pending:
            hits += self._run(pending)
        return hits

    def expire(self, now: float) -> list[CorrelationHit]:
        """Close the windows (of conditions decided at close) that ended before event time ``now``."""
        pending: dict[int, list[tuple[int, _Source, float, tuple[str, ...]]]] = {}
        hits: list[CorrelationHit] = []
        plans = self._plan_by_id
        while self._deadlines and self._deadlines[0][0] < now:
            deadline, generation, rule_id, key = heapq.heappop(self._deadlines)
            window = self._groups.get((rule_id, key))
            if window is None or window.generation != generation or window.deadline != deadline:
                continue  # evicted, or closed and reopened by its own events
            hit = self._close(plans[rule_id], key, window)
            if hit is not None:
                hits.append(hit)
                self._forward(hit, pending)
        if pending:
            hits += self._run(pending)
        return hits

    def reloaded(self, rules: Sequence[CorrelationRule]) -> CorrelationEngine:
        """An engine for ``rules`` that keeps the windows of correlations whose definition is unchanged."""
        new = CorrelationEngine(
            rules,
            max_groups=self.max_groups,
            max_events_per_group=self.max_events_per_group,
            lateness=self.lateness,
        )
        new._seq = itertools.count(next(self._seq))
        old = {rule.id: rule.definition for rule in self.rules}
        kept = {rule.id for rule in rules if old.get(rule.id) == rule.definition}
        for (rule_id, key), window in self._groups.items():
            if rule_id in kept:
                new._groups[rule_id, key] = window
                if window.deadline is not None:
                    new._deadlines.append((window.deadline, window.generation, rule_id, key))
        heapq.heapify(new._deadlines)
        new.evicted, new.late_events = self.evicted, self.late_events
        new.skipped_events, new.truncated = self.skipped_events, self.truncated
        new.watermark = self.watermark
        return new

    # -- internals -----------------------------------------------------------------------------

    def _forward(
        self, hit: CorrelationHit, pending: dict[int, list[tuple[int, _Source, float, tuple[str, ...]]]]
    ) -> None:
        """Queue a hit for the correlations that reference its rule (chains)."""
        for plan_index, position in self._consumers.get(hit.rule.id, ()):
            pending.setdefault(plan_index, []).append((position, hit, hit.last, hit.event_ids))

    def _run(self, pending: dict[int, list[tuple[int, _Source, float, tuple[str, ...]]]]) -> list[CorrelationHit]:
        """Process queued matches plan by plan; plans are in dependency order, so chains resolve in one pass."""
        hits: list[CorrelationHit] = []
        order = sorted(pending)
        while order:
            plan_index = heapq.heappop(order)
            plan = self._plans[plan_index]
            items = pending.pop(plan_index)
            several = len(items) > 1
            if several:
                items.sort(key=operator.itemgetter(0))
            seen: set[tuple[tuple[str, ...], Any]] = set()
            for position, source, timestamp, ids in items:
                key = _values(source, plan.rule.group_fields[position])
                value: Any = None
                if key is not None and plan.measures_field:
                    value = _measured(plan.kind, _values(source, plan.rule.value_fields[position]))
                if key is None or (value is None and plan.measures_field):
                    self.skipped_events += 1
                    continue
                # One event counts once per group, however many referenced rules it matched;
                # temporal types record each referenced rule.
                if several:
                    once = (key, position if plan.kind in _TEMPORAL else None)
                    if once in seen:
                        continue
                    seen.add(once)
                hit = self._update(plan, key, (timestamp, next(self._seq), position, value, ids))
                if hit is not None:
                    hits.append(hit)
                    before = len(pending)
                    self._forward(hit, pending)
                    if len(pending) != before:
                        order = sorted(pending)
        return hits

    def _sweep(self, now: float) -> None:
        """Forget idle groups, oldest first, whose window (and mute) ended before ``now``.

        Amortized O(1): it stops at the first least-recently-updated group still in use, so a
        long-lived group may hold others back until ``max_groups`` evicts them.
        """
        groups = self._groups
        while groups:
            (rule_id, _), window = next(iter(groups.items()))
            if window.deadline is not None:
                return  # closed through the deadline heap
            if max(window.newest + self._plan_by_id[rule_id].rule.timespan, window.muted_until) >= now:
                return
            groups.popitem(last=False)

    def _window(self, plan: _Plan, key: tuple[str, ...]) -> _Window:
        group = (plan.rule.id, key)
        window = self._groups.get(group)
        if window is None:
            window = self._groups[group] = _Window()
            while len(self._groups) > self.max_groups:
                self._groups.popitem(last=False)
                self.evicted += 1
        else:
            self._groups.move_to_end(group)
        return window

    def _update(self, plan: _Plan, key: tuple[str, ...], entry: _Entry) -> CorrelationHit | None:
        window = self._window(plan, key)
        timespan = plan.rule.timespan
        timestamp = entry[0]
        if plan.upward:
            if timestamp < window.newest - timespan:
                self.late_events += 1
                return None
            self._insert(plan, window, entry)
            window.newest = max(window.newest, timestamp)
            self._prune(plan, window, window.newest - timespan)
            if window.newest < window.muted_until or not window.entries:
                return None
            measure = _measure(plan, window)
            if not plan.rule.condition.holds(measure):
                return None
            hit = _hit(plan, key, window, measure)
            window.clear()
            window.muted_until = window.newest + timespan
            return hit
        closed: CorrelationHit | None = None
        if window.deadline is not None and timestamp > window.deadline:
            closed = self._close(plan, key, window, drop_empty=False)
        if window.deadline is None:
            window.start, window.deadline = timestamp, timestamp + timespan
            window.generation = next(self._seq)  # unique: a stale deadline never matches a reopened window
            heapq.heappush(self._deadlines, (window.deadline, window.generation, plan.rule.id, key))
        elif timestamp < window.start:
            self.late_events += 1
            return closed
        self._insert(plan, window, entry)
        window.newest = max(window.newest, timestamp)
        return closed

    def _close(
        self, plan: _Plan, key: tuple[str, ...], window: _Window, *, drop_empty: bool = True
    ) -> CorrelationHit | None:
        """Decide a closed window, then forget it."""
        hit = None
        if window.entries:
            measure = _measure(plan, window)
            if plan.rule.condition.holds(measure):
                hit = _hit(plan, key, window, measure)
        window.clear()
        window.deadline = None
        if drop_empty:
            self._groups.pop((plan.rule.id, key), None)
        return hit

    def _insert(self, plan: _Plan, window: _Window, entry: _Entry) -> None:
        entries = window.entries
        if plan.dedupe is not None:
            dedupe_key = entry[3] if plan.dedupe == "value" else entry[2]
            old = window.latest.get(dedupe_key)
            if old is not None:
                if _order(old) > _order(entry):
                    return  # a newer entry for the same value is already there
                self._remove(plan, window, bisect.bisect_left(entries, _order(old), key=_order))
            window.latest[dedupe_key] = entry
        if not entries or _order(entries[-1]) <= _order(entry):
            entries.append(entry)
        else:
            bisect.insort(entries, entry, key=_order)
        if plan.kind in NUMERIC_TYPES:
            window.total += entry[3]
        while len(entries) > plan.cap:
            self._remove(plan, window, 0)
            self.truncated += 1

    def _remove(self, plan: _Plan, window: _Window, index: int) -> None:
        entry = window.entries.pop(index)
        self._forget(plan, window, entry)

    def _forget(self, plan: _Plan, window: _Window, entry: _Entry) -> None:
        if plan.dedupe is not None:
            dedupe_key = entry[3] if plan.dedupe == "value" else entry[2]
            if window.latest.get(dedupe_key) is entry:
                del window.latest[dedupe_key]
        if plan.kind in NUMERIC_TYPES:
            window.total -= entry[3]

    def _prune(self, plan: _Plan, window: _Window, cutoff: float) -> None:
        """Drop entries older than ``cutoff``."""
        entries = window.entries
        if not entries or entries[0][0] >= cutoff:
            return
        end = bisect.bisect_left(entries, cutoff, key=lambda e: e[0])
        for entry in entries[:end]:
            self._forget(plan, window, entry)
        del entries[:end]


def _values(source: _Source, fields: tuple[str, ...]) -> tuple[str, ...] | None:
    """The first value of each field (a group key), or None when one is missing."""
    out: list[str] = []
    if isinstance(source, CorrelationHit):
        for name in fields:
            value = source.group.get(name)
            if value is None:
                return None
            out.append(value)
    else:
        for name in fields:
            texts = source.texts(name)
            if not texts:
                return None
            out.append(texts[0])
    return tuple(out)


def _measured(kind: CorrelationType, values: tuple[str, ...] | None) -> Any:
    """The value an entry contributes: the field values for value_count, a number otherwise."""
    if values is None:
        return None
    if kind not in NUMERIC_TYPES:
        return values
    try:
        number = float(values[0])
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _measure(plan: _Plan, window: _Window) -> float:
    kind, entries = plan.kind, window.entries
    if kind is CorrelationType.EVENT_COUNT:
        return float(len(entries))
    if kind in (CorrelationType.VALUE_COUNT, CorrelationType.TEMPORAL):
        return float(len(window.latest))
    if kind is CorrelationType.VALUE_SUM:
        return window.total
    if kind is CorrelationType.VALUE_AVG:
        return window.total / len(entries)
    if kind is CorrelationType.TEMPORAL_ORDERED:
        return float(len(_ordered_chain(entries, len(plan.rule.rule_refs))))
    return _percentile(sorted(e[3] for e in entries), plan.rule.condition.percentile or 50.0)


def _ordered_chain(entries: Iterable[_Entry], refs: int) -> tuple[_Entry, ...]:
    """The longest run of referenced rules matched in their listed order (the latest of equals).

    ``entries`` are in time order; ``chains[i]`` is the longest in-order chain so far that
    ends with rule ``i``.
    """
    chains: list[tuple[_Entry, ...]] = [()] * refs
    for entry in entries:
        position = entry[2]
        before = max(chains[:position], key=len, default=())
        if len(before) + 1 >= len(chains[position]):
            chains[position] = (*before, entry)
    return max(reversed(chains), key=len, default=())


def _percentile(values: Sequence[float], percentile: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    rank = (len(values) - 1) * min(max(percentile, 0.0), 100.0) / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def _hit(plan: _Plan, key: tuple[str, ...], window: _Window, measure: float) -> CorrelationHit:
    """A hit with the window's events as evidence (for temporal_ordered, the events in order)."""
    entries: Sequence[_Entry] = window.entries
    if plan.kind is CorrelationType.TEMPORAL_ORDERED:
        entries = _ordered_chain(entries, len(plan.rule.rule_refs))
    ids = [event_id for entry in entries for event_id in entry[4]]
    if len(ids) > MAX_EVIDENCE:
        ids = [*ids[: MAX_EVIDENCE - 1], ids[-1]]
    return CorrelationHit(
        rule=plan.rule,
        group=dict(zip(plan.rule.group_by, key, strict=True)),
        event_ids=tuple(dict.fromkeys(ids)),
        first=entries[0][0],
        last=entries[-1][0],
        value=measure,
    )


def _topological(rules: Sequence[CorrelationRule]) -> list[CorrelationRule]:
    """Referenced correlations before those that reference them (the loader rejects cycles)."""
    by_id = {rule.id: rule for rule in rules}
    done: dict[str, CorrelationRule] = {}

    def visit(rule: CorrelationRule, stack: frozenset[str]) -> None:
        if rule.id in done or rule.id in stack:
            return
        for ref in rule.rule_refs:
            if ref in by_id:
                visit(by_id[ref], stack | {rule.id})
        done[rule.id] = rule

    for rule in rules:
        visit(rule, frozenset())
    return list(done.values())


def _silent(rules: Sequence[CorrelationRule]) -> frozenset[str]:
    """Rules referenced by correlations, none of which says ``generate: true``."""
    generated: dict[str, bool] = {}
    for rule in rules:
        for ref in rule.rule_refs:
            generated[ref] = generated.get(ref, False) or rule.generate
    return frozenset(ref for ref, generate in generated.items() if not generate)
