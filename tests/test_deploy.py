"""deploy/: the YAML files parse, the agency and compose configs load, the units run real commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from secmon.cli.app import app, with_roles
from secmon.config import ROLES, LocalKafkaSettings, LocalNodeSettings, load_settings

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


# deploy/compose.kafka.yml: the scale-out mode, with a 3-broker Kafka.
COMPOSE_KAFKA = DEPLOY / "compose.kafka.yml"
COMPOSE_VARIABLES = {"ELASTIC_PASSWORD": "from-deploy-env"}  # what deploy/compose-init.sh writes


def interpolate(value: object) -> str:
    """``value`` as Compose hands it to the container: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``."""

    def replace(match: re.Match[str]) -> str:
        name, operator, default = match.group(1, 2, 3)
        if name in COMPOSE_VARIABLES:
            return COMPOSE_VARIABLES[name]
        assert operator == "-", f"${{{name}}} has no default and deploy/.env does not set it"
        return default

    return re.sub(r"\$\{(\w+)(?::([-?])([^}]*))?\}", replace, str(value))


def kafka_compose() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE_KAFKA.read_text())
    assert isinstance(compose, dict)
    return compose


def brokers(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The Kafka services, each with its environment interpolated."""
    return {
        name: {key: interpolate(value) for key, value in service["environment"].items()}
        for name, service in compose["services"].items()
        if service["image"].startswith("apache/kafka:")
    }


def secmon_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items() if service["image"] == "secmon:local"}


def roles_of(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--role"]


def test_the_kafka_compose_runs_the_versions_secmon_runs_locally() -> None:
    images = {interpolate(service["image"]) for service in kafka_compose()["services"].values()}
    assert f"apache/kafka:{LocalKafkaSettings().version}" in images  # type: ignore[call-arg]
    assert f"docker.elastic.co/elasticsearch/elasticsearch:{LocalNodeSettings().version}" in images  # type: ignore[call-arg]


def test_the_kafka_compose_brokers_form_one_quorum_of_all_three() -> None:
    nodes = brokers(kafka_compose())
    assert len(nodes) == 3
    ids = {env["KAFKA_NODE_ID"]: name for name, env in nodes.items()}
    assert len(ids) == len(nodes)  # every node id once
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1
    for name, env in nodes.items():
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, name
        # {"PLAINTEXT": ":9092", "CONTROLLER": ":9093"}
        listeners = dict(listener.split("://") for listener in env["KAFKA_LISTENERS"].split(","))
        controller_port = listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]].rpartition(":")[2]
        voters = dict(voter.split("@") for voter in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        # Each voter is a broker of this file, by its id, at its controller listener.
        assert voters == {node: f"{host}:{controller_port}" for node, host in ids.items()}, name
        advertised = dict(listener.split("://") for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert advertised.keys() <= listeners.keys() - {env["KAFKA_CONTROLLER_LISTENER_NAMES"]}, name
        assert all(address.partition(":")[0] == name for address in advertised.values()), name


def test_the_kafka_compose_replication_survives_one_broker_down() -> None:
    compose = kafka_compose()
    nodes = brokers(compose)
    min_insync = max(int(env["KAFKA_MIN_INSYNC_REPLICAS"]) for env in nodes.values())
    for name, env in nodes.items():
        # Kafka's own topics, the committed offsets above all, replicated like secmon's.
        for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"):
            assert min_insync < int(env[key]) <= len(nodes), (name, key)
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name  # secmon creates its topics, partitioned
    for name, service in secmon_services(compose).items():
        replication = int(service["environment"]["SECMON_BUS__REPLICATION_FACTOR"])
        # More replicas than brokers cannot be created; no more than min.insync.replicas stops writes on one loss.
        assert min_insync < replication <= len(nodes), name


def test_the_kafka_compose_secmon_services_load_with_the_bus_and_their_roles() -> None:
    compose = kafka_compose()
    services = secmon_services(compose)
    addresses = sorted(env["KAFKA_ADVERTISED_LISTENERS"].split("://")[1] for env in brokers(compose).values())
    healthy = {name for name, service in compose["services"].items() if "healthcheck" in service}
    run: dict[str, list[str]] = {}
    for name, service in services.items():
        assert "./compose.secmon.yml:/etc/secmon/secmon.yml:ro" in service["volumes"], name
        program_args = service["command"]
        assert program_args[:3] == ["--config", "/etc/secmon/secmon.yml", "up"], name
        roles = run[name] = roles_of(program_args)
        # The configuration the container starts with: the mounted file, its environment, the roles of its command.
        environ = {key: interpolate(value) for key, value in service["environment"].items()}
        settings = with_roles(load_settings(DEPLOY / "compose.secmon.yml", environ=environ), roles)
        assert settings.bus is not None and settings.bus.bootstrap_servers is not None, name
        assert sorted(settings.bus.bootstrap_servers.split(",")) == addresses, name
        assert settings.roles == roles, name
        assert settings.elasticsearch.url == "http://elasticsearch:9200", name
        assert settings.elasticsearch.password == COMPOSE_VARIABLES["ELASTIC_PASSWORD"], name
        # It starts once Elasticsearch and every broker answer their healthchecks.
        waits_for = {
            dependency for dependency, when in service["depends_on"].items() if when["condition"] == "service_healthy"
        }
        assert waits_for == {"elasticsearch", *brokers(compose)} and waits_for <= healthy, name
        result = CliRunner().invoke(app, [*program_args[2:], "--help"])
        assert result.exit_code == 0, result.output
    assert sorted(role for roles in run.values() for role in roles) == sorted([*ROLES, "detect"])  # two workers
    state = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service["volumes"]
        if volume.split(":")[1] == "/var/lib/secmon"
    ]
    assert len(state) == len(set(state)) == len(services)  # never one state_dir for two processes
