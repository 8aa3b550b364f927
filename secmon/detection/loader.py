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
    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule):
            continue
        if rule.errors:
            out.extend(problem_at(path, text, e, "sigma") for e in rule.errors if str(e) not in reported)
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
