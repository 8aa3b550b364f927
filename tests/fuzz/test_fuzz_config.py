"""The configuration file under random input: it loads, or a ConfigError names the file, the line and the key.

A configuration made of generated values gives them back in the settings; the same with one key
broken (out of range, the wrong type, misspelled, a date where a duration goes) is refused with
``<file>:<line>: <key>: ...`` pointing at the line the generator broke.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.bench.fuzz.cases import Case, ConfigCase, broken_config_case, config_case
from secmon.bench.fuzz.targets import check_config_case, check_config_text
from tests.fuzz.drawing import cases, damaged_text, examples


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file each example is written to (a function's tmp_path would be shared by all examples anyway)."""
    return tmp_path_factory.mktemp("config-fuzz") / "secmon.yml"


@examples(150)
@given(text=st.text(max_size=300) | damaged_text(lambda d: Case(config_case(d).text)))
def test_any_text_loads_or_fails_naming_file_and_line(path: Path, text: str) -> None:
    check_config_text(text, path)


@examples(60)
@given(case=cases(config_case))
def test_a_generated_configuration_gives_back_its_values(path: Path, case: ConfigCase) -> None:
    check_config_case(case, path)


@examples(60)
@given(case=cases(broken_config_case))
def test_a_broken_key_is_named_with_its_file_and_line(path: Path, case: ConfigCase) -> None:
    check_config_case(case, path)
