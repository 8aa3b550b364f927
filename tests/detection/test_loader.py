"""Loading rule files: every problem is a RuleProblem with its line, and one bad file costs only itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmon.detection.detector import load_detector
from secmon.detection.loader import load_text
from secmon.detection.logsource import LogsourceMap
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
from secmon.detection.rules import Rule, RuleProblem

RULE = """\
title: Whoami
id: 6b1c2d3e-0000-4000-8000-0000000000{n:02d}
status: test
level: high
logsource: {{product: windows, category: process_creation}}
detection:
  selection: {{Image|endswith: '\\\\whoami.exe'}}
  condition: selection
"""


@pytest.fixture(scope="module")
def pipeline() -> object:
    logsources = LogsourceMap.load(RULES_DIR / "logsources.yml")
    return build_pipeline(logsources, default_pipeline_files(RULES_DIR), None)


def test_a_rule_with_an_impossible_date_is_a_problem_on_its_line_and_the_others_load(tmp_path: Path) -> None:
    # PyYAML raised ValueError for it, and the whole rule set (and secmon up's detection) failed to load.
    (tmp_path / "good.yml").write_text(RULE.format(n=1))
    (tmp_path / "bad.yml").write_text(RULE.format(n=2).replace("status: test", "date: 2023-02-30\nstatus: test"))
    detector = load_detector([tmp_path])
    assert [rule.id for rule in detector.rules] == ["6b1c2d3e-0000-4000-8000-000000000001"]
    [problem] = detector.ruleset.problems
    assert (problem.path, problem.line) == (str(tmp_path / "bad.yml"), 3)
    assert "2023-02-30" in problem.reason


@pytest.mark.parametrize(
    ("change", "line", "said"),
    [
        (("level: high", "level: hi\x08gh"), 4, "character #x0008 is not allowed in YAML"),
        (("status: test", "status: test\nauthor: {name: x}"), 4, "author must be a string"),
        (("product: windows, category: process_creation", "product: windows, category: nothing"), 5, "logsource"),
        (("id: 6b1c2d3e-0000-4000-8000-000000000003", "id: not-a-uuid"), 2, "UUID"),
    ],
    ids=["control character", "author not text", "unknown logsource", "id not a uuid"],
)
def test_a_problem_pysigma_gives_no_position_for_is_on_the_line_of_its_key(
    pipeline: object, change: tuple[str, str], line: int, said: str
) -> None:
    text = RULE.format(n=3).replace(*change)
    [problem] = load_text(text, "rule.yml", pipeline)  # type: ignore[arg-type]
    assert isinstance(problem, RuleProblem)
    assert problem.line == line, problem
    assert said in problem.reason


def test_the_rule_itself_still_loads(pipeline: object) -> None:
    [rule] = load_text(RULE.format(n=4), "rule.yml", pipeline)  # type: ignore[arg-type]
    assert isinstance(rule, Rule)
