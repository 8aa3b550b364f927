"""Configuration: YAML validated by pydantic, SECMON_* overrides, errors that say where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secmon.config import load_settings, parse_duration
from secmon.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secmon.yml"
    path.write_text(text)
    return path


def test_a_valid_file_is_read_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path, "elasticsearch:\n  url: https://es.example:9200\n  api_key: abc\nwriter:\n  batch_size: 42\n"
    )
    settings = load_settings(path, environ={})
    assert settings.elasticsearch.url == "https://es.example:9200"
    assert settings.elasticsearch.api_key == "abc"
    assert settings.writer.batch_size == 42
    assert settings.writer.max_in_flight == 2


def test_an_invalid_value_names_the_file_line_key_and_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "# comment\nwriter:\n  flush_interval: 0.5\n  batch_size: -3\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert f"{path}:4: writer.batch_size: Input should be greater than or equal to 1" in str(error.value)


def test_an_unknown_option_is_refused_rather_than_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "elasticsearch:\n  urll: http://localhost:9200\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: elasticsearch\.urll: unknown option"):
        load_settings(path, environ={})


def test_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "writer:\n  batch_size: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:3:1: invalid YAML"):
        load_settings(path, environ={})


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(path, environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "elasticsearch:\n  url: http://file:9200\nwriter:\n  batch_size: 10\n")
    settings = load_settings(
        path,
        environ={
            "SECMON_ES_URL": "https://env:9200",
            "SECMON_ES_CA_CERTS": "/etc/ssl/ca.pem",
            "SECMON_WRITER__BATCH_SIZE": "2000",
            "SECMON_ELASTICSEARCH__VERIFY_CERTS": "false",
            "UNRELATED": "x",
        },
    )
    assert settings.elasticsearch.url == "https://env:9200"
    assert settings.elasticsearch.ca_certs == Path("/etc/ssl/ca.pem")
    assert settings.elasticsearch.verify_certs is False
    assert settings.writer.batch_size == 2000


def test_a_bad_environment_value_names_the_variable() -> None:
    expected = "environment variable SECMON_ES_URL: elasticsearch.url: Value error, must start"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(None, environ={"SECMON_ES_URL": "es.example:9200"})


def test_retention_durations_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "retention:\n  datasets:\n    sshd: forever\n")
    with pytest.raises(ConfigError, match="sshd: 'forever' is not a duration"):
        load_settings(path, environ={})
    assert parse_duration("90d") == 90 * 86400
    assert parse_duration("500ms") == 0.5


def test_sources_are_validated_with_their_type_and_format(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  edge:\n    type: syslog\n    mode: tcp\n    format: sysloog\n")
    with pytest.raises(
        ConfigError,
        match=rf"{re.escape(str(path))}:5: sources\.edge\.format: Value error, unknown format 'sysloog'",
    ):
        load_settings(path, environ={})
    path = write(tmp_path, "sources:\n  edge:\n    type: carrier-pigeon\n")
    with pytest.raises(
        ConfigError, match=r"sources\.edge: Input tag 'carrier-pigeon' found using 'type' does not match"
    ):
        load_settings(path, environ={})
    path = write(
        tmp_path, "sources:\n  web:\n    type: file\n    include: [/var/log/nginx/*.log]\n    format: apache_access\n"
    )
    assert load_settings(path, environ={}).sources["web"].format == "apache_access"


def test_a_value_yaml_cannot_build_is_refused_at_its_key_not_raised(tmp_path: Path) -> None:
    # PyYAML raised a bare ValueError (no file, no line) for a date that is not one.
    path = write(tmp_path, "retention:\n  events: 2021-02-30\nwriter:\n  batch_size: !!int many\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert f"{path}:2: retention.events: String should match pattern" in str(error.value)
    assert f"{path}:4: writer.batch_size: Input should be a valid integer" in str(error.value)


def test_an_environment_value_that_looks_like_a_date_is_checked_as_text() -> None:
    with pytest.raises(ConfigError, match=r"environment variable SECMON_RETENTION__EVENTS: retention\.events: "):
        load_settings(None, environ={"SECMON_RETENTION__EVENTS": "2021-02-30"})


def test_a_key_yaml_reads_as_no_text_names_its_line(tmp_path: Path) -> None:
    # "on:" is a boolean to YAML: the model could only say "Keys should be strings", without line or key.
    path = write(tmp_path, "sources:\n  on:\n    type: syslog\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert (
        str(error.value) == f"{path}:2: sources.on: a key must be text, and YAML reads 'on' as true or false: quote it"
    )


def test_a_control_character_names_its_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "writer:\n  batch_size: 1\x08\n")
    with pytest.raises(ConfigError, match=rf"{path}:2:16: invalid YAML: character #x0008 is not allowed"):
        load_settings(path, environ={})


def test_nesting_too_deep_for_yaml_is_a_config_error(tmp_path: Path) -> None:
    # The pure-Python loader ran out of stack (RecursionError) from about 500 levels.
    path = write(tmp_path, "writer: " + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(ConfigError, match=rf"{path}:1: writer: Input should be a valid dictionary"):
        load_settings(path, environ={})
    path = write(tmp_path, "writer: " + "[" * 1100 + "]" * 1100 + "\n")
    with pytest.raises(ConfigError, match=rf"{path}:1:\d+: invalid YAML: exceeded maximum nesting depth"):
        load_settings(path, environ={})


def test_environment_sets_options_two_sections_deep_that_the_file_does_not_have() -> None:
    settings = load_settings(
        None,
        environ={
            "SECMON_BUS__LOCAL__PORT": "9999",
            "SECMON_BUS__OPTIONS__SASL.USERNAME": "secmon",
            "SECMON_ELASTICSEARCH__LOCAL__PORT": "9201",
        },
    )
    assert settings.bus is not None
    assert settings.bus.local.port == 9999
    assert settings.bus.options == {"sasl.username": "secmon"}
    assert settings.elasticsearch.local.port == 9201


def test_environment_sets_the_roles_and_the_state_dir_and_names_a_bad_role() -> None:
    settings = load_settings(
        None, environ={"SECMON_BUS__PARTITIONS": "2", "SECMON_ROLES": "collect, detect", "SECMON_STATE_DIR": "/srv/x"}
    )
    assert settings.roles == ["collect", "detect"]
    assert settings.state_dir == Path("/srv/x")
    with pytest.raises(ConfigError, match=r"environment variable SECMON_ROLES: roles: .*not bogus"):
        load_settings(None, environ={"SECMON_BUS__PARTITIONS": "2", "SECMON_ROLES": "collect,bogus"})


def test_roles_other_than_all_three_need_a_bus(tmp_path: Path) -> None:
    path = tmp_path / "secmon.yml"
    path.write_text("roles: [detect]\n")
    with pytest.raises(ConfigError, match="need a bus: section"):
        load_settings(path, environ={})
