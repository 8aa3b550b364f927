"""deploy/: the YAML files parse, the agency and compose configs load, the units run real commands."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from secmon.cli.app import app
from secmon.config import load_settings

DEPLOY = Path(__file__).parent.parent / "deploy"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yml")), ids=lambda path: path.name)
def test_the_yaml_files_parse(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_the_agency_example_forwards_with_the_key_from_the_environment() -> None:
    settings = load_settings(DEPLOY / "agency.example.yml", environ={"SECMON_FORWARD__API_KEY": "secmon_x"})
    assert settings.forward.url is not None
    assert settings.forward.api_key is not None
    assert settings.forward.api_key.get_secret_value() == "secmon_x"
    assert "http" not in {source.type for source in settings.sources.values()}  # no keys to check them with


def test_the_compose_config_loads_and_the_compose_file_passes_it_the_password() -> None:
    settings = load_settings(DEPLOY / "compose.secmon.yml", environ={})
    assert {source.type for source in settings.sources.values()} == {"syslog", "http"}
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    secmon = compose["services"]["secmon"]
    assert secmon["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY.parent / secmon["build"]["context"].replace("..", ".") / secmon["build"]["dockerfile"]).is_file()
    assert "ELASTIC_PASSWORD" in secmon["environment"]["SECMON_ES_PASSWORD"]
    assert "./compose.secmon.yml:/etc/secmon/secmon.yml:ro" in secmon["volumes"]


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda path: path.name)
def test_the_systemd_units_run_existing_commands(unit: Path) -> None:
    commands = [
        line.split("=", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]
    assert commands
    for command in commands:
        program, *args = shlex.split(command)
        assert program == "/opt/secmon/bin/secmon"
        assert args[0] == "--config" and args[1].startswith("/etc/secmon/")
        result = CliRunner().invoke(app, [*args[2:], "--help"])
        assert result.exit_code == 0, result.output
