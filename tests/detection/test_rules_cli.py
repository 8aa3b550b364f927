"""``secmon rules lint|test|convert`` as a rule author runs them, on real rule files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secmon.cli.rules import rules_app

SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sigma" / "rules"

RULE = """\
title: Whoami run by a web server
id: 2b6c2f0e-6f4b-4d61-9d4c-6b1f7d0c9a11
status: test
level: high
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
        ParentImage|endswith:
            - '\\w3wp.exe'
            - '\\httpd.exe'
    condition: selection
"""

FIELDREF_RULE = """\
title: Parent and child are the same image
id: 5d5f0c1e-2a33-4d6f-8a53-0e4c1d9b7a22
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|fieldref: ParentImage
    condition: selection
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(rules_app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines: compare words


def sysmon_process(image: str, parent: str) -> dict[str, object]:
    return {
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "event_id": "1",
            "event_data": {"Image": image, "ParentImage": parent},
        }
    }


def write_jsonl(path: Path, *events: object) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "whoami.yml").write_text(RULE)
    return folder


def test_lint_reports_each_broken_rule_with_file_line_and_kind_counts(rules: Path) -> None:
    (rules / "bad_modifier.yml").write_text(RULE.replace("Image|endswith: '\\whoami.exe'", "Image|endswitch: x"))
    (rules / "bad_yaml.yml").write_text("title: x\ndetection:\n  sel: [unclosed\n")
    (rules / "no_events.yml").write_text(
        RULE.replace("2b6c2f0e", "3c7d3f1f").replace("category: process_creation", "category: file_access")
    )

    code, out = run("lint", str(rules))

    assert code == 1
    assert f"{rules / 'bad_modifier.yml'}:10: Unknown modifier 'endswitch'" in out
    assert f"{rules / 'bad_yaml.yml'}:4: invalid YAML" in out
    assert f"{rules / 'no_events.yml'}:5: no secmon events for logsource product=windows, category=file_access" in out
    assert "sigma (1)" in out and "yaml (1)" in out and "logsource (1)" in out  # the groups
    assert "kind problems sigma 1 yaml 1 logsource 1" in out  # the per-kind summary
    assert "4 files: 1 rules and 0 correlations loaded, 3 problems." in out


def test_lint_reports_every_problem_of_a_rule_each_with_its_line(rules: Path) -> None:
    # pySigma stops reading a detection at its first broken definition, and then never parses the
    # condition: a misspelled modifier used to hide the rest.
    broken = rules / "broken.yml"
    broken.write_text(
        RULE.replace("level: high", "level: hihg")
        .replace("Image|endswith: '\\whoami.exe'", "Image|endwith: '\\whoami.exe'")
        .replace("ParentImage|endswith:", "ParentImage|endswiths:")
        .replace("condition: selection", "condition: selection and nosuch")
    )

    code, out = run("lint", str(broken))

    assert code == 1
    assert f"{broken}:4: 'hihg' is not a valid Sigma rule level" in out
    assert f"{broken}:10: Unknown modifier 'endwith'" in out
    assert f"{broken}:11: Unknown modifier 'endswiths'" in out
    assert f"{broken}:14: Detection 'nosuch' not defined in detections" in out
    assert "1 files: 0 rules and 0 correlations loaded, 4 problems." in out


def test_lint_of_the_shipped_rules_is_clean() -> None:
    code, out = run("lint", str(Path(__file__).resolve().parents[2] / "rules"))
    assert code == 0, out
    assert "no problems" in out


def test_a_rule_with_examples_that_behave(rules: Path, tmp_path: Path) -> None:
    match = write_jsonl(
        tmp_path / "match.jsonl",
        sysmon_process("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe"),
        sysmon_process("C:\\WINDOWS\\system32\\WHOAMI.EXE", "C:\\Apache\\bin\\httpd.exe"),  # Sigma ignores case
    )
    nomatch = write_jsonl(
        tmp_path / "nomatch.jsonl",
        sysmon_process("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\explorer.exe"),
        {"winlog": {"channel": "Security", "event_id": "1", "event_data": {"Image": "x\\whoami.exe"}}},
    )

    code, out = run("test", str(rules / "whoami.yml"), "--match", str(match), "--nomatch", str(nomatch))

    assert code == 0, out
    assert f"✓ {match}:1: matched (Whoami run by a web server)" in out
    assert f"✓ {nomatch}:2: did not match" in out
    assert "4 of 4 examples as expected." in out


def test_examples_that_do_not_behave_fail_with_their_lines(rules: Path, tmp_path: Path) -> None:
    match = write_jsonl(tmp_path / "match.jsonl", sysmon_process("C:\\whoami.exe", "C:\\explorer.exe"))
    nomatch = tmp_path / "nomatch.jsonl"
    nomatch.write_text(json.dumps(sysmon_process("C:\\whoami.exe", "C:\\w3wp.exe")) + "\n\n{not json\n")

    code, out = run("test", str(rules / "whoami.yml"), "--match", str(match), "--nomatch", str(nomatch))

    assert code == 1
    assert f"✗ {match}:1: expected a match, matched nothing" in out
    assert f"✗ {nomatch}:1: expected no match, matched Whoami run by a web server" in out
    assert f"✗ {nomatch}:3: invalid JSON" in out
    assert "0 of 3 examples as expected." in out


def test_testing_a_rule_that_does_not_load_fails_with_its_problem(rules: Path, tmp_path: Path) -> None:
    broken = rules / "broken.yml"
    broken.write_text(RULE.replace("condition: selection", "condition: selection and filter"))
    match = write_jsonl(tmp_path / "match.jsonl", sysmon_process("C:\\whoami.exe", "C:\\w3wp.exe"))

    code, out = run("test", str(broken), "--match", str(match))

    assert code == 1
    assert f"✗ {broken}:" in out and "'filter'" in out
    assert "did not load" in out


def test_convert_prints_the_lucene_query_with_the_logsource_selection(rules: Path) -> None:
    code, out = run("convert", str(rules / "whoami.yml"))

    assert code == 0, out
    assert "# Whoami run by a web server" in out
    assert "winlog.channel:Microsoft\\-Windows\\-Sysmon\\/Operational AND winlog.event_id:1" in out
    assert "winlog.event_data.Image:*\\\\whoami.exe" in out
    assert "winlog.event_data.ParentImage:(*\\\\w3wp.exe OR *\\\\httpd.exe)" in out


def test_convert_to_esql_reads_secmon_events_and_quotes_keyword_numbers() -> None:
    rule = SIGMA / "windows" / "builtin" / "security" / "win_security_susp_lsass_dump_generic.yml"
    code, out = run("convert", "--format", "esql", str(rule))

    assert code == 0, out
    assert out.startswith("# Potentially Suspicious AccessMask Requested From LSASS")
    assert 'from secmon-events-* metadata _id, _index, _version | where winlog.channel=="Security"' in out
    assert 'winlog.event_id=="4656"' in out  # winlog.event_id is a keyword: ES|QL rejects a number


def test_convert_reports_the_rules_the_backend_cannot_convert(rules: Path) -> None:
    (rules / "fieldref.yml").write_text(FIELDREF_RULE)

    code, out = run("convert", str(rules))

    assert code == 1
    assert "# Whoami run by a web server" in out  # the rule that converts is still printed
    assert f"not converted: {rules / 'fieldref.yml'}" in out
    assert "can't handle field references" in out
    assert "1 rules converted to lucene, 1 not converted." in out


def test_convert_rejects_an_unknown_format(rules: Path) -> None:
    code, out = run("convert", "--format", "kql", str(rules))
    assert code == 2
    assert "'kql' is not one of lucene, esql" in out
