"""Sigma rule files → :class:`RuleSet`, with every problem collected instead of raised.

Each file is parsed by pySigma on its own, so a broken file costs only itself. A rule is
reported (file, line, reason) and skipped when pySigma rejects it, when secmon has no events
for its logsource, or when its condition needs something the streaming matcher cannot do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.rule.detection import EmptySigmaDetections, SigmaDetection, SigmaDetections

from secmon.detection.ir import AnyOf, Node
from secmon.detection.logsource import key_of
from secmon.detection.pipelines import logsource_item_id
from secmon.detection.rules import Rule, RuleProblem, RuleSet
from secmon.detection.translate import UnsupportedCondition, translate
from secmon.yaml_loader import SafeLoader, yaml_problem

RULE_SUFFIXES = (".yml", ".yaml")
# secmon's own data beside its rules (rules/logsources.yml, rules/pipelines/): not Sigma rules.
NOT_RULES = ("logsources.yml", "pipelines")
_QUOTED = re.compile(r"'([^']+)'")
_WORD = re.compile(r"[a-z]{2,}")
_KEY_OF_WORD = {"identifier": "id"}  # what pySigma calls a rule key in its messages, where it differs
_STAND_IN = {"stand-in for a definition that does not parse": ""}


def rule_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The rule files under ``paths`` (folders are searched recursively), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.suffix in RULE_SUFFIXES
                and p.is_file()
                and not NOT_RULES.__contains__(p.relative_to(path).parts[0])
            )
        else:
            yield path


def load_rules(paths: Sequence[Path], pipeline: ProcessingPipeline) -> RuleSet:
    """Every rule under ``paths``, mapped by ``pipeline``; problems are collected, never raised."""
    result = RuleSet()
    seen: dict[str, str] = {}
    for path in rule_files(paths):
        result.files += 1
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(RuleProblem(str(path), f"cannot read: {exc}", "io"))
            continue
        for item in load_text(text, str(path), pipeline):
            if isinstance(item, RuleProblem):
                result.problems.append(item)
            elif item.id in seen:
                result.problems.append(
                    RuleProblem(item.path, f"duplicate rule id {item.id} (also in {seen[item.id]})", "duplicate")
                )
            else:
                seen[item.id] = item.path
                result.rules.append(item)
    return result


def load_text(text: str, path: str, pipeline: ProcessingPipeline) -> list[Rule | RuleProblem]:
    """The rules (or problems) of one rule file's text."""
    try:
        documents = [d for d in yaml.load_all(text, Loader=SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc, text)
        return [RuleProblem(path, f"invalid YAML: {problem.reason}", "yaml", problem.line)]
    if not documents:
        return [RuleProblem(path, "empty file", "yaml")]
    if not all(isinstance(d, dict) for d in documents):
        return [RuleProblem(path, "not a Sigma rule: each YAML document must be a mapping", "sigma", 1)]
    # Correlation rules may refer to rules of other files: secmon.detection.correlation loads them.
    documents = [d for d in documents if "correlation" not in d]
    try:
        collection = SigmaCollection.from_dicts(documents, collect_errors=True, resolve_references=False)
    except SigmaError as exc:
        return [problem_at(path, text, exc, "sigma")]
    except Exception as exc:  # pySigma failing on odd input must cost this file only
        return [RuleProblem(path, f"pySigma could not read it: {exc!r}", "sigma")]
    # pySigma lists a rule's errors both in the collection and in the rule: report each once.
    reported = {str(e) for e in collection.errors}
    out: list[Rule | RuleProblem] = [problem_at(path, text, e, "sigma") for e in collection.errors]
    # Each rule's own YAML document, to look further into a broken rule; not when collection
    # actions (global, repeat) merge documents into rules.
    own: list[dict[str, Any] | None] = (
        list(documents)
        if len(documents) == len(collection.rules) and not any("action" in d for d in documents)
        else [None] * len(collection.rules)
    )
    for rule, document in zip(collection.rules, own, strict=True):
        if isinstance(rule, SigmaCorrelationRule):
            continue
        if rule.errors:
            errors = [*rule.errors, *_further_errors(rule, document)]
            for error in errors:
                if str(error) not in reported:
                    reported.add(str(error))
                    out.append(problem_at(path, text, error, "sigma"))
            continue
        try:
            out.append(_compile_rule(rule, path, text, pipeline))
        except Exception as exc:  # a pySigma bug on one rule must cost that rule only
            out.append(RuleProblem(path, f"pySigma failed on it: {exc!r}", "sigma"))
    return out


def _compile_rule(rule: SigmaRule, path: str, text: str, pipeline: ProcessingPipeline) -> Rule | RuleProblem:
    logsource = key_of(rule.logsource.product, rule.logsource.category, rule.logsource.service)
    try:
        pipeline.apply(rule)
    except SigmaError as exc:
        return problem_at(path, text, exc, "sigma")
    if not rule.was_processed_by(logsource_item_id(logsource)):
        described = ", ".join(
            f"{k}={v}" for k, v in zip(("product", "category", "service"), logsource, strict=True) if v
        )
        reason = f"no secmon events for logsource {described or '(empty)'}"
        return RuleProblem(path, reason, "logsource", _line_of_key(text, "logsource"))
    try:
        conditions: list[Node] = [translate(c.parsed) for c in rule.detection.parsed_condition]
    except UnsupportedCondition as exc:
        return problem_at(path, text, exc, "unsupported")
    except SigmaError as exc:
        return problem_at(path, text, exc, "sigma")
    condition = conditions[0] if len(conditions) == 1 else AnyOf(tuple(conditions))
    return Rule(
        id=str(rule.id) if rule.id else f"file:{path}",
        title=rule.title or Path(path).stem,
        level=rule.level.name.lower() if rule.level else "medium",
        status=rule.status.name.lower() if rule.status else "",
        path=path,
        logsource=logsource,
        condition=condition,
        name=rule.name,
        description=rule.description or "",
        tags=tuple(str(t) for t in rule.tags),
        falsepositives=tuple(str(f) for f in rule.falsepositives or ()),
        references=tuple(str(r) for r in rule.references or ()),
        author=rule.author or "",
    )


def _further_errors(rule: SigmaRule, document: dict[str, Any] | None) -> list[SigmaError]:
    """What else pySigma finds wrong with a rule it reported errors for, so that one lint shows them all.

    pySigma gives up on a detection section at its first broken definition (and then never parses
    the condition): each definition is parsed on its own here, and the condition against the
    identifiers the section defines, whether their definitions parse or not.
    """
    try:
        errors: list[SigmaError] = []
        detections: SigmaDetections | None = rule.detection
        if isinstance(detections, EmptySigmaDetections):
            section = document.get("detection") if document is not None else None
            detections = _detections_apart(section, errors) if isinstance(section, dict) else None
        for condition in detections.parsed_condition if detections is not None else ():
            try:
                condition.parsed  # noqa: B018 - parsing is what finds an undefined identifier
            except SigmaError as exc:
                errors.append(exc)
        return errors
    except Exception:  # looking further must never cost more than what pySigma reported already
        return []


def _detections_apart(section: dict[str, Any], errors: list[SigmaError]) -> SigmaDetections | None:
    """The detection section with every definition parsed on its own, its errors added to ``errors``.

    A definition that does not parse is replaced by a stand-in, so that the condition may still
    name it. None when there is no condition or no definition to check it against.
    """
    definitions: dict[str, SigmaDetection] = {}
    for name, definition in section.items():
        if name == "condition":
            continue
        found = _definition_errors(definition)
        errors.extend(found)
        definitions[str(name)] = SigmaDetection.from_definition(_STAND_IN if found else definition)
    condition = section.get("condition")
    conditions = [c for c in (condition if isinstance(condition, list) else [condition]) if isinstance(c, str)]
    if not definitions or not conditions:
        return None
    return SigmaDetections(definitions, conditions)


def _definition_errors(definition: Any) -> list[SigmaError]:
    """The errors of one detection definition, field by field (pySigma stops at a definition's first)."""
    parts = (
        [{name: value} for name, value in definition.items()]
        if isinstance(definition, dict) and len(definition) > 1
        else definition
        if isinstance(definition, list) and len(definition) > 1 and all(isinstance(d, dict) for d in definition)
        else None
    )
    if parts is not None:
        return [error for part in parts for error in _definition_errors(part)]
    try:
        SigmaDetection.from_definition(definition)
    except SigmaError as exc:
        return [exc]
    return []


def problem_at(path: str, text: str, error: Any, kind: str = "sigma") -> RuleProblem:
    """A problem with the line it is on: pySigma's when it knows, else the first line naming its subject."""
    source = getattr(error, "source", None)
    line = getattr(source, "line", None)
    message = str(getattr(error, "args", [error])[0]) if getattr(error, "args", None) else str(error)
    message = message.split(" (while ")[0]  # pySigma appends the rule's absolute path; ours is in RuleProblem
    if line is None:
        tokens = [error.token] if getattr(error, "token", None) else _QUOTED.findall(message)
        for token in tokens:
            line = line_of(text, token)
            if line:
                break
    if line is None:
        # "Sigma rule author must be a string": the line of the key the message names.
        line = next((found for word in _WORD.findall(message) if (found := _line_of_key(text, word))), None)
    return RuleProblem(path, message, kind, line)


def _line_of_key(text: str, name: str) -> int | None:
    """The line of the first top-level key ``name`` (or the key pySigma's word stands for) in ``text``."""
    key = re.escape(_KEY_OF_WORD.get(name, name))
    found = re.search(rf"^{key}:", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else None


def line_of(text: str, token: str) -> int | None:
    """The first line of ``text`` containing ``token`` (1-based), or None."""
    for number, content in enumerate(text.splitlines(), 1):
        if token and token in content:
            return number
    return None
