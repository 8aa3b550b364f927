"""Sigma rule YAML under random input: load_text never raises, problems say what and on which line.

A generated rule (title, id, level, an EventData field, a value and a modifier) loads as itself and
matches the event it was written for and not another; a rule broken at a known line is reported at
that line.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secmon.bench.fuzz.cases import BrokenRule, Case, SigmaCase, broken_sigma_case, sigma_case
from secmon.bench.fuzz.targets import check_broken_rule, check_rule_text, check_sigma_case
from tests.fuzz.drawing import cases, damaged_text, examples


@examples(150)
@given(text=st.text(max_size=300) | damaged_text(lambda d: Case(sigma_case(d).text)))
def test_any_text_loads_to_rules_or_to_problems_that_say_what_and_where(text: str) -> None:
    check_rule_text(text)


@examples(40)
@given(case=cases(sigma_case))
def test_a_generated_rule_loads_as_itself_and_matches_its_event_only(case: SigmaCase) -> None:
    check_sigma_case(case)


@examples(40)
@given(broken=cases(broken_sigma_case))
def test_a_rule_broken_on_a_line_is_reported_on_that_line(broken: BrokenRule) -> None:
    check_broken_rule(broken)
