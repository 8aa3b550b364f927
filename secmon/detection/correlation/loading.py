"""Loading Sigma correlation rules into plain data (:class:`~secmon.detection.rules.CorrelationRule`).

:func:`load_correlations` reads the correlation documents of the same rule files the
rule loader reads, parses them with pySigma, and resolves each ``rules:`` reference (an id, or
a ``name``) against the loaded base rules and the other correlations, so correlations can be
chained. Field names are mapped *per referenced rule*: a group-by field (or the field an
alias gives for that rule) is run through the processing pipeline in the context of that
rule's logsource, exactly as the field would be in the rule's own detection. pySigma can
apply a pipeline to a correlation rule as a whole, but then a logsource condition holds when
*any* referenced rule has the logsource, so a correlation over a Windows and a Linux rule
would map ``User`` the Windows way for both. A field of a referenced *correlation* is one of
its group-by fields (that is all its hit carries); anything else is reported. Every problem
is a :class:`RuleProblem` with file and line (kind ``correlation``, ``unsupported`` or
``duplicate``); one bad correlation never stops the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaExtendedCorrelationCondition,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from secmon.detection.loader import rule_files
from secmon.detection.logsource import LogsourceKey
from secmon.detection.rules import (
    COMPARISONS,
    NUMERIC_TYPES,
    CorrelationCondition,
    CorrelationRule,
    CorrelationType,
    Rule,
    RuleProblem,
    Threshold,
)
from secmon.yaml_loader import SafeLoader

__all__ = ["load_correlations"]


class _Invalid(Exception):
    """A correlation that cannot be loaded; becomes a RuleProblem."""

    def __init__(self, reason: str, line: int | None, kind: str = "correlation") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.kind = kind


@dataclass(slots=True)
class _Draft:
    """A parsed correlation document before its references are resolved."""

    sigma: SigmaCorrelationRule
    raw: Mapping[str, Any]
    node: yaml.MappingNode
    path: str
    id: str
    thresholds: tuple[Threshold, ...] = ()
    loaded: CorrelationRule | None = None
    failed: bool = False


def load_correlations(
    paths: Sequence[Path], pipeline: ProcessingPipeline, rules: Sequence[Rule]
) -> tuple[list[CorrelationRule], list[RuleProblem]]:
    """The correlation rules under ``paths``, resolved against ``rules``; problems are collected, never raised.

    Files that are not valid YAML are skipped silently: the rule loader reports them.
    """
    problems: list[RuleProblem] = []
    drafts: list[_Draft] = []
    for path in rule_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # reported by the rule loader
        if "correlation" not in text:  # most rule files: skip the second YAML parse
            continue
        for item in _drafts(text, str(path)):
            if isinstance(item, RuleProblem):
                problems.append(item)
            else:
                drafts.append(item)

    resolver = _Resolver(pipeline, rules, drafts, problems)
    loaded: list[CorrelationRule] = []
    for draft in drafts:
        rule = resolver.load(draft)
        if rule is not None:
            loaded.append(rule)
    return loaded, problems


def _drafts(text: str, path: str) -> Iterator[_Draft | RuleProblem]:
    try:
        documents = list(yaml.load_all(text, Loader=SafeLoader))
        nodes = list(yaml.compose_all(text, Loader=SafeLoader))
    except yaml.YAMLError:
        return  # reported by the rule loader
    for index, (document, node) in enumerate(zip(documents, nodes, strict=True)):
        if not isinstance(document, dict) or "correlation" not in document or not isinstance(node, yaml.MappingNode):
            continue
        line = node.start_mark.line + 1
        try:
            yield _parse(document, node, path, index, line)
        except _Invalid as exc:
            yield RuleProblem(path, exc.reason, exc.kind, exc.line)


# pySigma errors that name no location → the key they are about
_ERROR_KEYS = {
    "SigmaTimespanError": ("correlation", "timespan"),
    "SigmaCorrelationTypeError": ("correlation", "type"),
    "SigmaCorrelationConditionError": ("correlation", "condition"),
    "SigmaLevelError": ("level",),
    "SigmaIdentifierError": ("id",),
    "SigmaStatusError": ("status",),
}


def _parse(document: dict[str, Any], node: yaml.MappingNode, path: str, index: int, line: int) -> _Draft:
    body = document["correlation"]
    if not isinstance(body, dict):
        raise _Invalid("correlation must be a mapping", _line(node, "correlation") or line)
    # The specification allows a range (gt: 100, lte: 200); pySigma takes exactly one
    # operator, so it is given the first and the thresholds are read here.
    raw_condition = body.get("condition")
    thresholds: list[Threshold] = []
    if isinstance(raw_condition, dict):
        ops = [op for op in raw_condition if op in COMPARISONS]
        for op in ops:
            try:
                thresholds.append(Threshold(op, float(raw_condition[op])))
            except (TypeError, ValueError):
                where = _line(node, "correlation", "condition", op)
                raise _Invalid(f"condition {op}: {raw_condition[op]!r} is not a number", where) from None
        if len(ops) > 1:
            rest = {k: v for k, v in raw_condition.items() if k not in ops[1:]}
            document = {**document, "correlation": {**body, "condition": rest}}
    source = SigmaRuleLocation(Path(path), line)
    try:
        sigma = SigmaCorrelationRule.from_dict(document, collect_errors=True, source=source)
    except SigmaError as exc:
        raise _sigma_invalid(exc, node, line) from None
    if sigma.errors:
        raise _sigma_invalid(sigma.errors[0], node, line)
    if isinstance(sigma.condition, SigmaExtendedCorrelationCondition):
        where = _line(node, "correlation", "condition")
        raise _Invalid("boolean (extended) correlation conditions are not supported", where, "unsupported")
    ident = str(sigma.id) if sigma.id else f"file:{path}#{index}"
    return _Draft(sigma, document, node, path, ident, tuple(thresholds))


def _sigma_invalid(error: Exception, node: yaml.MappingNode, line: int) -> _Invalid:
    message = str(error.args[0]) if error.args else str(error)
    message = re.sub(r" in \S+:\d+(:\d+)?$", "", message)  # pySigma appends the document's location
    keys = _ERROR_KEYS.get(type(error).__name__)
    return _Invalid(message, (_line(node, *keys) if keys else None) or line)


class _Resolver:
    """Resolves references and fields of drafts, recursively for chained correlations."""

    def __init__(
        self, pipeline: ProcessingPipeline, rules: Sequence[Rule], drafts: list[_Draft], problems: list[RuleProblem]
    ) -> None:
        self.pipeline = pipeline
        self.problems = problems
        self.rules_by_id = {rule.id: rule for rule in rules}
        self.rules_by_name: dict[str, list[Rule]] = {}
        for rule in rules:
            if rule.name:
                self.rules_by_name.setdefault(rule.name, []).append(rule)
        self.drafts_by_id: dict[str, _Draft] = {}
        self.drafts_by_name: dict[str, list[_Draft]] = {}
        for draft in drafts:
            if draft.id in self.drafts_by_id or draft.id in self.rules_by_id:
                other = (
                    self.drafts_by_id[draft.id].path
                    if draft.id in self.drafts_by_id
                    else self.rules_by_id[draft.id].path
                )
                self._fail(
                    draft, f"duplicate rule id {draft.id} (also in {other})", _line(draft.node, "id"), "duplicate"
                )
                continue
            self.drafts_by_id[draft.id] = draft
            if draft.sigma.name:
                self.drafts_by_name.setdefault(draft.sigma.name, []).append(draft)
        self.loading: set[str] = set()
        self.mapped: dict[tuple[LogsourceKey, str], str | _Invalid] = {}

    def _fail(self, draft: _Draft, reason: str, line: int | None, kind: str = "correlation") -> None:
        draft.failed = True
        self.problems.append(RuleProblem(draft.path, reason, kind, line or draft.node.start_mark.line + 1))

    def load(self, draft: _Draft) -> CorrelationRule | None:
        if draft.loaded is not None or draft.failed:
            return draft.loaded
        self.loading.add(draft.id)
        try:
            draft.loaded = self._build(draft)
        except _Invalid as exc:
            self._fail(draft, exc.reason, exc.line, exc.kind)
        finally:
            self.loading.discard(draft.id)
        return draft.loaded

    def _find(self, draft: _Draft, reference: str, line: int | None) -> Rule | CorrelationRule:
        """The rule a reference names: by id first, then by name (the same file's rule wins a tie)."""
        inner = self.drafts_by_id.get(reference)
        if inner is None:
            if reference in self.rules_by_id:
                return self.rules_by_id[reference]
            candidates: list[Rule | _Draft] = [
                *self.rules_by_name.get(reference, []),
                *self.drafts_by_name.get(reference, []),
            ]
            if len(candidates) > 1:
                candidates = [c for c in candidates if c.path == draft.path] or candidates
            if len(candidates) > 1:
                where = ", ".join(sorted({c.path for c in candidates}))
                raise _Invalid(f"rule name '{reference}' is ambiguous (defined in {where})", line)
            if not candidates:
                raise _Invalid(f"referenced rule '{reference}' is unknown or was not loaded", line)
            found = candidates[0]
            if isinstance(found, Rule):
                return found
            inner = found
        if inner.id in self.loading:
            raise _Invalid(f"correlation reference cycle through '{reference}'", line)
        loaded = self.load(inner)
        if loaded is None:
            raise _Invalid(f"referenced correlation '{reference}' was not loaded", line)
        return loaded

    def _build(self, draft: _Draft) -> CorrelationRule:
        sigma, node = draft.sigma, draft.node
        kind = CorrelationType(sigma.type.name.lower())
        refs_line = _line(node, "correlation", "rules")
        references = [r.reference for r in sigma.rules or ()]
        if not references:
            raise _Invalid("correlation without rules", refs_line)
        targets = [
            self._find(draft, ref, _line(node, "correlation", "rules", i) or refs_line)
            for i, ref in enumerate(references)
        ]
        # Aliases: alias → {resolved rule id → field}
        aliases: dict[str, dict[str, str]] = {}
        for alias in sigma.aliases:
            mapping: dict[str, str] = {}
            for rule_ref, field_name in alias.mapping.items():
                where = _line(node, "correlation", "aliases", alias.alias, rule_ref.reference)
                mapping[self._find(draft, rule_ref.reference, where).id] = field_name
            aliases[alias.alias] = mapping

        group_by = tuple(sigma.group_by or ())
        condition = sigma.condition
        if not isinstance(condition, SigmaCorrelationCondition):  # rejected by _parse already
            raise _Invalid("boolean (extended) correlation conditions are not supported", None, "unsupported")
        wanted = condition.fieldref
        value_names: tuple[str, ...] = (
            () if wanted is None else (wanted,) if isinstance(wanted, str) else tuple(str(f) for f in wanted)
        )
        if kind in NUMERIC_TYPES and len(value_names) != 1:
            raise _Invalid(f"{kind} needs exactly one condition field", _line(node, "correlation", "condition"))
        percentile: float | None = None
        if kind is CorrelationType.VALUE_MEDIAN:
            percentile = 50.0
        elif kind is CorrelationType.VALUE_PERCENTILE:
            if condition.percentile is None:
                where = _line(node, "correlation", "condition")
                raise _Invalid("value_percentile needs condition.percentile (which percentile to compare)", where)
            percentile = float(condition.percentile)

        group_fields = tuple(self._fields(draft, target, group_by, aliases, "group-by") for target in targets)
        value_fields = tuple(self._fields(draft, target, value_names, aliases, "condition") for target in targets)
        thresholds = draft.thresholds or (Threshold(condition.op.name.lower(), float(condition.count)),)
        return CorrelationRule(
            id=draft.id,
            title=sigma.title or Path(draft.path).stem,
            level=sigma.level.name.lower() if sigma.level else "medium",
            type=kind,
            rule_refs=tuple(t.id for t in targets),
            group_by=_names(group_by, group_fields),
            timespan=float(sigma.timespan.seconds),
            condition=CorrelationCondition(thresholds, _names(value_names, value_fields), percentile),
            path=draft.path,
            name=sigma.name,
            generate=bool(sigma.generate),
            group_fields=group_fields,
            value_fields=value_fields,
            tags=tuple(str(t) for t in sigma.tags),
            status=sigma.status.name.lower() if sigma.status else "",
            description=sigma.description or "",
            falsepositives=tuple(str(f) for f in sigma.falsepositives or ()),
            references=tuple(str(r) for r in sigma.references or ()),
            author=sigma.author or "",
        )

    def _fields(
        self,
        draft: _Draft,
        target: Rule | CorrelationRule,
        names: tuple[str, ...],
        aliases: Mapping[str, Mapping[str, str]],
        section: str,
    ) -> tuple[str, ...]:
        """Where each of ``names`` is found for a match of ``target``."""
        out: list[str] = []
        for name in names:
            where = _line(draft.node, "correlation", section) or _line(draft.node, "correlation")
            sigma_field = name
            if name in aliases:
                if target.id not in aliases[name]:
                    raise _Invalid(f"alias '{name}' gives no field for rule '{target.name or target.id}'", where)
                sigma_field = aliases[name][target.id]
            if isinstance(target, CorrelationRule):
                out.append(_inner_key(target, sigma_field, where))
            else:
                out.append(self._map(target.logsource, sigma_field, where))
        return tuple(out)

    def _map(self, logsource: LogsourceKey, name: str, line: int | None) -> str:
        """A Sigma field name as the pipeline maps it in rules of ``logsource``."""
        key = (logsource, name)
        mapped = self.mapped.get(key)
        if mapped is None:
            mapped = self.mapped[key] = _map_field(self.pipeline, logsource, name)
        if isinstance(mapped, _Invalid):
            raise _Invalid(mapped.reason, line)
        return mapped


def _inner_key(inner: CorrelationRule, name: str, line: int | None) -> str:
    """The key of a referenced correlation's hit group that ``name`` refers to."""
    if name in inner.group_by:
        return name
    raise _Invalid(
        f"field '{name}' is not a group-by field of referenced correlation '{inner.name or inner.id}'"
        f" (its hits carry only {', '.join(inner.group_by) or 'no fields'})",
        line,
    )


def _map_field(pipeline: ProcessingPipeline, logsource: LogsourceKey, name: str) -> str | _Invalid:
    product, category, service = logsource
    probe = {
        "title": "secmon field mapping",
        "logsource": {k: v for k, v in (("product", product), ("category", category), ("service", service)) if v},
        "detection": {"secmon_field": {name: "x"}, "condition": "secmon_field"},
    }
    try:
        rule = SigmaRule.from_dict(probe)
        pipeline.apply(rule)
    except SigmaError as exc:
        return _Invalid(f"field '{name}' cannot be mapped: {exc.args[0] if exc.args else exc}", None)
    fields = sorted({f for f in _leaf_fields(rule.detection.detections["secmon_field"]) if f})
    if len(fields) != 1:
        return _Invalid(f"field '{name}' maps to {len(fields)} fields ({', '.join(fields)}); group by one", None)
    return fields[0]


def _leaf_fields(detection: SigmaDetection | SigmaDetectionItem) -> Iterator[str | None]:
    if isinstance(detection, SigmaDetectionItem):
        yield detection.field
    else:
        for item in detection.detection_items:
            yield from _leaf_fields(item)


def _names(names: tuple[str, ...], per_ref: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    """Each name as the references agree to call it, else as the rule wrote it."""
    out: list[str] = []
    for i, name in enumerate(names):
        seen = {fields[i] for fields in per_ref}
        out.append(seen.pop() if len(seen) == 1 else name)
    return tuple(out)


def _line(node: yaml.Node | None, *path: str | int) -> int | None:
    """The 1-based line of the YAML value at ``path`` (mapping keys, sequence indexes), if present."""
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        elif isinstance(node, yaml.ScalarNode) and step == 0:
            continue  # "rules: one_rule" is a list of one
        else:
            return None
        if node is None:
            return None
    return node.start_mark.line + 1 if node is not None else None
