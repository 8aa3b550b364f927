"""Every rule secmon ships has examples, and does what they say.

A rule ``rules/<dir>/<name>.yml`` has ``tests/detection/cases/<name>/match.jsonl`` (events it
must each match) and ``nomatch.jsonl`` (events it may not match, near misses preferably), one
ECS event a line as secmon stores it: the output of secmon's parsers for a real log line. They
are checked the way ``secmon rules test`` checks them. Correlation rules are not matched one
event at a time and are left to tests/detection/test_correlation.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from secmon.cli.rules import check_examples
from secmon.detection.loader import rule_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
CASES = Path(__file__).resolve().parent / "cases"
NOT_RULES = (RULES / "pipelines", RULES / "logsources.yml")


def has_detection_rule(path: Path) -> bool:
    """Whether a rule file holds a rule matched event by event (not only correlation rules)."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    except yaml.YAMLError:
        return True  # the test reports why it does not load
    return any("correlation" not in document for document in documents) or not documents


def shipped_rules() -> list[Path]:
    files = (p for p in rule_files([RULES]) if not any(p == n or n in p.parents for n in NOT_RULES))
    return [p for p in files if has_detection_rule(p)]


@pytest.mark.parametrize("rule", shipped_rules(), ids=lambda p: str(p.relative_to(RULES)))
def test_shipped_rule_matches_its_examples(rule: Path) -> None:
    cases = CASES / rule.stem
    match, nomatch = cases / "match.jsonl", cases / "nomatch.jsonl"
    missing = [p.name for p in (match, nomatch) if not p.is_file()]
    assert not missing, (
        f"{rule.relative_to(ROOT)} has no {' or '.join(missing)} in {cases.relative_to(ROOT)}: every shipped rule "
        "needs events it must match and near misses it must not (one ECS event a line)"
    )

    report = check_examples(rule, match, nomatch)

    assert not report.problems, [str(p) for p in report.problems]
    assert {r.expected for r in report.results} == {True, False}, "both files need at least one event"
    wrong = [
        f"{r}: {r.error or ('matched nothing' if r.expected else 'matched ' + ', '.join(r.matched))}"
        for r in report.results
        if not r.ok
    ]
    assert not wrong, wrong


def test_every_case_folder_belongs_to_a_shipped_rule() -> None:
    stems = {p.stem for p in shipped_rules()}
    orphans = sorted(p.name for p in CASES.iterdir() if p.is_dir() and p.name not in stems)
    assert not orphans, f"case folders without a rule (renamed or removed?): {orphans}"
