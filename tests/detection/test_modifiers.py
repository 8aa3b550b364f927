"""Every modifier of the Sigma specification, through pySigma, the pipeline and the streaming matcher.

Rules use the Windows Security channel as their logsource, so their fields land under
``winlog.event_data.*`` as secmon stores Windows events.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from secmon.detection.engine import Engine
from secmon.detection.loader import load_text
from secmon.detection.logsource import LogsourceMap
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
from secmon.detection.rules import Rule, RuleProblem

LOGSOURCES = LogsourceMap.load(RULES_DIR / "logsources.yml")


def engine_for(detection: str, placeholders: dict[str, list[str]] | None = None) -> Engine:
    text = "title: t\nid: 11111111-1111-1111-1111-111111111111\nlogsource:\n  product: windows\n  service: security\n"
    text += "detection:\n" + textwrap.indent(textwrap.dedent(detection).strip(), "  ") + "\n"
    pipeline = build_pipeline(LOGSOURCES, default_pipeline_files(), placeholders)
    loaded = load_text(text, "test.yml", pipeline)
    problems = [str(p) for p in loaded if isinstance(p, RuleProblem)]
    assert not problems, problems
    return Engine([r for r in loaded if isinstance(r, Rule)], LOGSOURCES)


def security(**event_data: Any) -> dict[str, Any]:
    return {"winlog": {"channel": "Security", "event_id": "4688", "event_data": event_data}}


def matches(detection: str, event: dict[str, Any], **kw: Any) -> bool:
    return bool(engine_for(detection, **kw).match(event))


def test_plain_values_are_case_insensitive_and_whole() -> None:
    rule = "sel:\n  Image: C:\\Windows\\cmd.exe\ncondition: sel"
    assert matches(rule, security(Image="c:\\WINDOWS\\CMD.EXE"))
    assert not matches(rule, security(Image="C:\\Windows\\cmd.exe2"))


def test_logsource_selects_the_channel() -> None:
    rule = "sel:\n  Image: a\ncondition: sel"
    event = security(Image="a")
    event["winlog"]["channel"] = "System"
    assert not matches(rule, event)


@pytest.mark.parametrize(
    ("modifier", "hit", "miss"),
    [
        ("contains", "x foo y", "fo o"),
        ("startswith", "FOObar", "barfoo"),
        ("endswith", "barFOO", "foobar"),
    ],
)
def test_substring_modifiers(modifier: str, hit: str, miss: str) -> None:
    rule = f"sel:\n  Field|{modifier}: foo\ncondition: sel"
    assert matches(rule, security(Field=hit))
    assert not matches(rule, security(Field=miss))


def test_wildcards_in_the_middle_and_single_character() -> None:
    rule = "sel:\n  Field: 'a*b?d'\ncondition: sel"
    assert matches(rule, security(Field="aXXXbcd"))
    assert matches(rule, security(Field="A\nbCD"))  # * spans newlines
    assert not matches(rule, security(Field="abd"))


def test_escaped_wildcard_is_literal() -> None:
    rule = "sel:\n  Field: 'a\\*b'\ncondition: sel"
    assert matches(rule, security(Field="a*b"))
    assert not matches(rule, security(Field="axb"))


def test_all_requires_every_value() -> None:
    rule = "sel:\n  CommandLine|contains|all:\n    - ' -enc '\n    - 'hidden'\ncondition: sel"
    assert matches(rule, security(CommandLine="powershell -w hidden -enc AAA"))
    assert not matches(rule, security(CommandLine="powershell -enc AAA"))


@pytest.mark.parametrize("dash", ["-", "/", "\u2013", "\u2014", "\u2015"])
def test_windash_accepts_every_dash(dash: str) -> None:
    rule = "sel:\n  CommandLine|windash|contains: ' -exec bypass'\ncondition: sel"
    assert matches(rule, security(CommandLine=f"powershell {dash}exec bypass"))


def test_windash_rejects_other_characters() -> None:
    rule = "sel:\n  CommandLine|windash|contains: ' -exec'\ncondition: sel"
    assert not matches(rule, security(CommandLine="powershell +exec"))


def test_re_is_case_sensitive_unless_i() -> None:
    assert matches("sel:\n  Field|re: 'ab+c'\ncondition: sel", security(Field="xxabbbcxx"))
    assert not matches("sel:\n  Field|re: 'ab+c'\ncondition: sel", security(Field="ABBC"))
    assert matches("sel:\n  Field|re|i: 'ab+c'\ncondition: sel", security(Field="ABBC"))


def test_re_multiline_and_dotall() -> None:
    text = "first\nsecond"
    assert not matches("sel:\n  Field|re: '^second'\ncondition: sel", security(Field=text))
    assert matches("sel:\n  Field|re|m: '^second'\ncondition: sel", security(Field=text))
    assert not matches("sel:\n  Field|re: 'first.second'\ncondition: sel", security(Field=text))
    assert matches("sel:\n  Field|re|s: 'first.second'\ncondition: sel", security(Field=text))


def test_regex_re2_cannot_run_is_reported_with_reason() -> None:
    text = (
        "title: t\nid: 22222222-2222-2222-2222-222222222222\nlogsource:\n  product: windows\n  service: security\n"
        "detection:\n  sel:\n    Field|re: '(a)\\1'\n  condition: sel\n"
    )
    (problem,) = load_text(text, "rules/x.yml", build_pipeline(LOGSOURCES))
    assert isinstance(problem, RuleProblem)
    assert problem.kind == "unsupported"
    assert "RE2" in problem.reason
    assert problem.line == 8


@pytest.mark.parametrize(
    ("value", "address", "expected"),
    [
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("2001:db8::/32", "2001:db8:1::5", True),
        ("2001:db8::/32", "2001:db9::5", False),
        ("10.0.0.0/8", "not an address", False),
    ],
)
def test_cidr(value: str, address: str, expected: bool) -> None:
    assert matches(f"sel:\n  IpAddress|cidr: '{value}'\ncondition: sel", security(IpAddress=address)) is expected


def test_base64() -> None:
    rule = "sel:\n  Field|base64: 'http://'\ncondition: sel"
    assert matches(rule, security(Field="aHR0cDovLw=="))


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
def test_base64offset_finds_the_value_at_any_alignment(prefix: str) -> None:
    import base64

    encoded = base64.b64encode(f"{prefix}http://evil".encode()).decode()
    rule = "sel:\n  Field|base64offset|contains: 'http://'\ncondition: sel"
    assert matches(rule, security(Field=f"x {encoded} y"))


@pytest.mark.parametrize(
    ("modifiers", "encoding"),
    # utf16 (with a byte order mark) is left out: pySigma 1.5 encodes the mark as UTF-8 (EF BB BF), not FF FE.
    [("wide", "utf-16-le"), ("utf16le", "utf-16-le"), ("utf16be", "utf-16-be")],
)
def test_utf16_encodings_then_base64(modifiers: str, encoding: str) -> None:
    import base64

    # utf16 puts a byte order mark before the value, so the value must start the encoded text
    payload = base64.b64encode("whoami /all".encode(encoding)).decode()
    rule = f"sel:\n  Field|{modifiers}|base64offset|contains: 'whoami'\ncondition: sel"
    assert matches(rule, security(Field=payload))


def test_exists() -> None:
    assert matches("sel:\n  Field|exists: true\ncondition: sel", security(Field=""))
    assert not matches("sel:\n  Field|exists: true\ncondition: sel", security(Other="x"))
    assert matches("sel:\n  Field|exists: false\ncondition: sel", security(Other="x"))


def test_null_empty_and_absent_differ() -> None:
    null_rule = "sel:\n  Field: null\ncondition: sel"
    empty_rule = "sel:\n  Field: ''\ncondition: sel"
    assert matches(null_rule, security(Other="x"))  # absent
    assert matches(null_rule, security(Field=None))
    assert not matches(null_rule, security(Field=""))
    assert matches(empty_rule, security(Field=""))
    assert not matches(empty_rule, security(Other="x"))


def test_expand_uses_configured_placeholder_values() -> None:
    rule = "sel:\n  User|expand: '%admins%'\ncondition: sel"
    assert matches(rule, security(User="root"), placeholders={"admins": ["Administrator", "root"]})
    assert not matches(rule, security(User="guest"), placeholders={"admins": ["Administrator", "root"]})


def test_expand_without_configured_values_is_reported() -> None:
    text = (
        "title: t\nid: 33333333-3333-3333-3333-333333333333\nlogsource:\n  product: windows\n  service: security\n"
        "detection:\n  sel:\n    User|expand: '%admins%'\n  condition: sel\n"
    )
    (problem,) = load_text(text, "x.yml", build_pipeline(LOGSOURCES))
    assert isinstance(problem, RuleProblem)
    assert "admins" in problem.reason


def test_cased() -> None:
    rule = "sel:\n  Field|cased: 'Secret'\ncondition: sel"
    assert matches(rule, security(Field="Secret"))
    assert not matches(rule, security(Field="secret"))
    contains = "sel:\n  Field|contains|cased: 'Secret'\ncondition: sel"
    assert matches(contains, security(Field="a Secret b"))
    assert not matches(contains, security(Field="a SECRET b"))


def test_fieldref() -> None:
    rule = "sel:\n  SubjectUserName|fieldref: TargetUserName\ncondition: sel"
    assert matches(rule, security(SubjectUserName="Bob", TargetUserName="bob"))
    assert not matches(rule, security(SubjectUserName="bob", TargetUserName="alice"))
    assert not matches(rule, security(SubjectUserName="bob"))


def test_fieldref_with_neq() -> None:
    rule = "sel:\n  SubjectUserName|fieldref|neq: TargetUserName\ncondition: sel"
    assert matches(rule, security(SubjectUserName="bob", TargetUserName="alice"))
    assert not matches(rule, security(SubjectUserName="bob", TargetUserName="bob"))


@pytest.mark.parametrize(
    ("modifier", "value", "expected"),
    [("lt", 5, True), ("lt", 4, False), ("lte", 4, True), ("gt", 3, True), ("gt", 4, False), ("gte", 4, True)],
)
def test_numeric_comparisons(modifier: str, value: int, expected: bool) -> None:
    rule = f"sel:\n  LogonType|{modifier}: {value}\ncondition: sel"
    assert matches(rule, security(LogonType="4")) is expected


def test_neq() -> None:
    rule = "sel:\n  LogonType|neq: 3\ncondition: sel"
    assert matches(rule, security(LogonType="10"))
    assert not matches(rule, security(LogonType="3"))


def test_numbers_match_their_text() -> None:
    rule = "sel:\n  EventID: 4688\ncondition: sel"
    assert matches(rule, security())


@pytest.mark.parametrize(
    ("modifier", "value"), [("hour", 13), ("minute", 5), ("day", 16), ("month", 5), ("year", 2019)]
)
def test_time_modifiers(modifier: str, value: int) -> None:
    rule = f"sel:\n  UtcTime|{modifier}: {value}\ncondition: sel"
    assert matches(rule, security(UtcTime="2019-05-16 13:05:13.759"))
    assert not matches(rule, security(UtcTime="2020-06-17 14:06:13.759"))


def test_keywords_search_the_message() -> None:
    rule = "keywords:\n  - 'mimikatz'\n  - 'sekurlsa'\ncondition: keywords"
    event = security()
    event["message"] = "Running MIMIKATZ now"
    assert matches(rule, event)
    event["message"] = "nothing here"
    assert not matches(rule, event)


def test_lists_match_any_element() -> None:
    rule = "sel:\n  Field: b\ncondition: sel"
    assert matches(rule, security(Field=["a", "b"]))


def test_condition_patterns_exclude_underscore_identifiers() -> None:
    detection = """
    selection_a:
      A: 1
    selection_b:
      B: 1
    _selection_c:
      C: 1
    condition: all of selection_*
    """
    assert matches(detection, security(A="1", B="1"))
    assert not matches(detection, security(A="1"))
    one_of = detection.replace("all of selection_*", "1 of selection_* and not 1 of _selection_*")
    assert matches(one_of, security(B="1"))
    assert not matches(one_of, security(B="1", C="1"))


def test_all_of_them_and_not() -> None:
    detection = """
    sel:
      A: 1
    filter:
      B: 2
    condition: sel and not filter
    """
    assert matches(detection, security(A="1", B="3"))
    assert not matches(detection, security(A="1", B="2"))
