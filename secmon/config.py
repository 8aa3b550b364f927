"""secmon's configuration: one YAML file validated by pydantic, with ``SECMON_*`` overrides.

Every option is documented by its ``Field(description=...)``; ``deploy/secmon.example.yml``
shows them all. Environment variables override the file:

* ``SECMON_<SECTION>__<KEY>[__<KEY>...]`` sets any option, e.g.
  ``SECMON_ELASTICSEARCH__URL=https://es.example:9200`` or ``SECMON_WRITER__BATCH_SIZE=2000``;
* ``SECMON_ES_URL``, ``SECMON_ES_API_KEY``, ``SECMON_ES_USERNAME``, ``SECMON_ES_PASSWORD`` and
  ``SECMON_ES_CA_CERTS`` are short forms of the ``elasticsearch`` section.

An invalid file or override raises :class:`~secmon.errors.ConfigError` naming the file and
line (or the variable), the key and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from secmon.collect.sources.settings import SourceSettings
from secmon.errors import ConfigError
from secmon.notify.config import NotificationSettings
from secmon.yaml_loader import SafeLoader, yaml_problem

DEFAULT_CONFIG_PATHS = (Path("secmon.yml"), Path("/etc/secmon/secmon.yml"))
ES_SHORT_ENV = {
    "SECMON_ES_URL": "url",
    "SECMON_ES_API_KEY": "api_key",
    "SECMON_ES_USERNAME": "username",
    "SECMON_ES_PASSWORD": "password",
    "SECMON_ES_CA_CERTS": "ca_certs",
}
_DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")
# The Sigma rules, logsource table and pySigma pipelines secmon ships (top-level rules/).
SHIPPED_RULES_DIR = Path(__file__).resolve().parents[1] / "rules"


def default_cache_dir() -> Path:
    """Where secmon keeps downloads, local node data and state.

    ``/var/lib/secmon`` for root (the local node runs as another user, who cannot enter
    ``/root``), otherwise ``$XDG_CACHE_HOME/secmon``.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/secmon")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "secmon"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalNodeSettings(_Section):
    """The Elasticsearch node secmon runs itself when no cluster URL is configured."""

    version: str = Field(
        "8.19.21",
        description="Elasticsearch version to fetch; must be published as the integ-test-zip on Maven Central.",
    )
    home: Path = Field(
        default_factory=lambda: default_cache_dir() / "elasticsearch",
        description="Cache folder for the downloaded distribution and the node's data, logs and config.",
    )
    host: str = Field("127.0.0.1", description="Address the node binds; keep it on loopback.")
    port: int = Field(9200, ge=1, le=65535, description="HTTP port of the node.")
    heap: str = Field("512m", pattern=r"^\d+[kmg]$", description="JVM heap (-Xms and -Xmx), e.g. 512m or 2g.")
    java_home: Path | None = Field(
        None,
        description="JDK to run the node with; defaults to ES_JAVA_HOME, then JAVA_HOME, then the system java.",
    )
    run_as: str = Field(
        "secmon-es",
        description="Elasticsearch refuses to run as root: when secmon runs as root, the node runs as this user "
        "(created as a system user if missing).",
    )
    start_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the node to become healthy.")


class LocalKafkaSettings(_Section):
    """The Kafka broker secmon runs itself on loopback: one combined broker and KRaft controller.

    ``bus.local`` when the scale-out mode names no cluster; ``secmon kafka`` builds it from its options.
    """

    version: str = Field(
        "4.4.0",
        description="Kafka version to fetch: the org.apache.kafka:kafka_2.13 jars and their dependencies on Maven.",
    )
    home: Path = Field(
        default_factory=lambda: default_cache_dir() / "kafka",
        description="Cache folder for the downloaded jars and the broker's data, logs and config.",
    )
    host: str = Field("127.0.0.1", description="Address the broker and its controller bind; keep it on loopback.")
    port: int = Field(9092, ge=1, le=65535, description="Port of the broker's client listener (bootstrap server).")
    controller_port: int = Field(9093, ge=1, le=65535, description="Port of the KRaft controller listener.")
    heap: str = Field("512m", pattern=r"^\d+[kmg]$", description="JVM heap (-Xms and -Xmx), e.g. 256m or 1g.")
    java_home: Path | None = Field(
        None,
        description="JDK to run the broker with (17 or newer); defaults to KAFKA_JAVA_HOME, then JAVA_HOME, "
        "then the system java.",
    )
    run_as: str = Field(
        "secmon-es",
        description="When secmon runs as root, the broker runs as this user, the same one as the local "
        "Elasticsearch node (created as a system user if missing).",
    )
    start_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the broker to answer.")
    stop_timeout: float = Field(60.0, gt=0, description="Seconds to wait for a clean shutdown before killing it.")

    @model_validator(mode="after")
    def _ports_differ(self) -> LocalKafkaSettings:
        if self.port == self.controller_port:
            raise ValueError("port and controller_port must differ")
        return self


KafkaOption = str | int | float | bool
ROLES = ("collect", "detect", "api")


class BusSettings(_Section):
    """The event bus of the scale-out mode: collectors produce to Kafka, detect workers consume from it.

    Without a ``bus:`` section secmon runs as one process, as it always did.
    """

    bootstrap_servers: str | None = Field(
        None,
        description="The Kafka cluster, host:port[,host:port...]. Unset: secmon runs a local broker (bus.local).",
    )
    topic_prefix: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Prefix of secmon's topics (<prefix>.events, <prefix>.correlation); "
        "defaults to elasticsearch.index_prefix.",
    )
    partitions: int = Field(
        12, ge=1, description="Partitions of each topic secmon creates: the most detect workers that share the work."
    )
    replication_factor: int = Field(1, ge=1, description="Replicas of each topic secmon creates (3 on a real cluster).")
    group: str | None = Field(
        None, description="Consumer group prefix of the detect workers; defaults to the topic prefix."
    )
    session_timeout: float = Field(
        10.0,
        ge=6,
        description="Seconds without a heartbeat after which a worker's partitions go to the others "
        "(brokers refuse less than their group.min.session.timeout.ms, 6 by default).",
    )
    batch_size: int = Field(2000, ge=1, description="Events a detect worker takes from Kafka at once at most.")
    options: dict[str, KafkaOption] = Field(
        default_factory=dict,
        description="librdkafka options for every client, e.g. security.protocol: SASL_SSL, sasl.mechanism, "
        "sasl.username, sasl.password, ssl.ca.location.",
    )
    local: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)  # type: ignore[arg-type]


class ElasticsearchSettings(_Section):
    """How secmon reaches Elasticsearch."""

    url: str | None = Field(
        None,
        description="URL of an existing cluster. Empty: secmon starts and uses its local node.",
    )
    api_key: str | None = Field(None, description="API key (the base64 'id:key' form) for the cluster.")
    username: str | None = Field(None, description="Basic-auth user, used when no api_key is set.")
    password: str | None = Field(None, description="Basic-auth password.")
    ca_certs: Path | None = Field(None, description="PEM file of the CA that signed the cluster's certificate.")
    verify_certs: bool = Field(True, description="Verify the cluster's TLS certificate. Turn off only for tests.")
    request_timeout: float = Field(30.0, gt=0, description="Seconds before a request to Elasticsearch times out.")
    index_prefix: str = Field(
        "secmon",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Prefix of every index, data stream and template secmon creates.",
    )
    replicas: str = Field(
        "0-1",
        pattern=r"^\d+(-(\d+|all))?$",
        description="auto_expand_replicas of secmon's indices: 0-1 is no replica on one node, one on a cluster.",
    )
    local: LocalNodeSettings = Field(default_factory=LocalNodeSettings)  # type: ignore[arg-type]

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None


class WriterSettings(_Section):
    """The bulk writer that sends events and alerts to Elasticsearch."""

    batch_size: int = Field(1000, ge=1, description="Documents per bulk request at most.")
    batch_bytes: int = Field(5_000_000, ge=1024, description="Bytes of NDJSON per bulk request at most.")
    flush_interval: float = Field(0.2, gt=0, description="Seconds a document may wait for its batch to fill.")
    max_in_flight: int = Field(2, ge=1, description="Bulk requests under way at once.")
    queue_bytes: int = Field(
        64_000_000, ge=1024, description="Bytes waiting in memory before senders are made to wait (backpressure)."
    )
    retry_initial: float = Field(0.1, gt=0, description="First retry delay in seconds; doubles up to retry_max.")
    retry_max: float = Field(10.0, gt=0, description="Longest delay between retries in seconds.")


class RetentionSettings(_Section):
    """How long stored events are kept."""

    events: str = Field("30d", pattern=_DURATION.pattern, description="Default retention of event data streams.")
    datasets: dict[str, str] = Field(
        default_factory=dict,
        description="Retention per event.dataset, overriding the default, e.g. {sshd: 90d}.",
    )
    deadletter: str = Field("14d", pattern=_DURATION.pattern, description="Retention of dead-lettered events.")
    rollover_after: str = Field(
        "1d",
        pattern=_DURATION.pattern,
        description="Where secmon enforces retention itself (no data stream lifecycle), start a new backing "
        "index this often; retention deletes whole backing indices.",
    )

    @field_validator("datasets")
    @classmethod
    def _durations(cls, value: dict[str, str]) -> dict[str, str]:
        for dataset, duration in value.items():
            if not _DURATION.match(duration):
                raise ValueError(f"{dataset}: {duration!r} is not a duration like 30d, 12h or 90m")
        return value


class BufferSettings(_Section):
    """The disk buffer between the collectors and Elasticsearch."""

    max_bytes: int = Field(
        1 << 30,
        ge=1 << 16,
        description="Bytes the buffer may hold while Elasticsearch is away; then TCP, HTTP and file "
        "sources wait and UDP drops (counted).",
    )
    segment_bytes: int = Field(32 << 20, ge=1 << 12, description="Size of one buffer file on disk.")
    fsync_interval: float = Field(
        1.0, gt=0, description="Seconds between fsyncs: a power cut may lose this much; a crash loses nothing."
    )


class MetricsSettings(_Section):
    """Prometheus metrics of the running service, also what ``secmon status`` reads."""

    address: str | None = Field(
        "127.0.0.1:9464",
        pattern=r"^.+:\d+$",
        description="host:port serving /metrics; null turns it off (and secmon status with it).",
    )


class DetectionSettings(_Section):
    """The streaming Sigma engine that matches every event as it is collected."""

    enabled: bool = Field(True, description="Match events against the rules as they arrive.")
    rules: list[Path] = Field(
        default_factory=lambda: [SHIPPED_RULES_DIR],
        description="Folders (searched recursively) and files of Sigma rules, including correlation rules.",
    )
    placeholders: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Values for the placeholders of expand-modifier rules, e.g. admins: [root, Administrator].",
    )
    reload_interval: float = Field(
        5.0, ge=0, description="Seconds between checks of the rule files for changes (hot reload); 0 turns it off."
    )
    group_window: str = Field(
        "10m",
        pattern=_DURATION.pattern,
        description="Hits of one rule for the same agency, host and user within this time become one alert "
        "with a count and first/last seen; 0s makes every hit its own alert.",
    )


class ApiSettings(_Section):
    """The HTTP API analysts, rule authors and agencies use (alerts, rules, events)."""

    enabled: bool = Field(True, description="Serve the API inside secmon up.")
    address: str = Field(
        "127.0.0.1:8000", pattern=r"^.+:\d+$", description="host:port to listen on (0.0.0.0 to serve other hosts)."
    )
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="Largest request body (a rule upload, a bulk triage); larger is answered 413."
    )
    agency_reads_alerts: bool = Field(
        False, description="Agency keys may also list and read their own agencies' alerts (never change them)."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS instead of HTTP.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    session_hours: float = Field(
        8.0, gt=0, le=24 * 30, description="How long a console sign-in lasts before the key is asked for again."
    )


class ForwardSettings(_Section):
    """Collector-only mode of an agency: events go to a central secmon instead of Elasticsearch."""

    url: str | None = Field(
        None,
        description="Base URL of the central secmon's http source (https://central.example:9201). Set: this "
        "instance only collects and forwards (no Elasticsearch, detection or API); null: off.",
    )
    api_key: SecretStr | None = Field(
        None, description="The agency's API key on the central secmon; better from SECMON_FORWARD__API_KEY."
    )
    ca_certs: Path | None = Field(None, description="PEM file of the CA that signed the central's certificate.")
    verify_certs: bool = Field(True, description="Verify the central's TLS certificate. Turn off only for tests.")
    batch_size: int = Field(1000, ge=1, description="Events per request to the central at most.")
    compress: bool = Field(True, description="gzip the requests (logs shrink about tenfold).")
    timeout: float = Field(30.0, gt=0, description="Seconds before a request to the central times out.")
    retry_initial: float = Field(0.5, gt=0, description="First retry delay in seconds; doubles up to retry_max.")
    retry_max: float = Field(30.0, gt=0, description="Longest delay between retries in seconds.")

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _key_with_url(self) -> ForwardSettings:
        if self.url is not None and (self.api_key is None or not self.api_key.get_secret_value()):
            raise ValueError("forwarding needs the agency's api_key (or SECMON_FORWARD__API_KEY)")
        return self


class Settings(_Section):
    """The whole configuration of one secmon instance."""

    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)  # type: ignore[arg-type]
    writer: WriterSettings = Field(default_factory=WriterSettings)  # type: ignore[arg-type]
    retention: RetentionSettings = Field(default_factory=RetentionSettings)  # type: ignore[arg-type]
    buffer: BufferSettings = Field(default_factory=BufferSettings)  # type: ignore[arg-type]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)  # type: ignore[arg-type]
    detection: DetectionSettings = Field(default_factory=DetectionSettings)  # type: ignore[arg-type]
    api: ApiSettings = Field(default_factory=ApiSettings)  # type: ignore[arg-type]
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)  # type: ignore[arg-type]
    forward: ForwardSettings = Field(default_factory=ForwardSettings)  # type: ignore[arg-type]
    sources: dict[str, SourceSettings] = Field(
        default_factory=dict,
        description="The collectors' sources, keyed by an id of your choice; each has a type: (syslog, file, http).",
    )
    state_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "state",
        description="Where secmon keeps checkpoints, its disk buffer and the compiled rule cache.",
    )
    bus: BusSettings | None = Field(
        None, description="Kafka between collection and detection (the scale-out mode); unset: one process."
    )
    roles: list[str] = Field(
        default_factory=lambda: list(ROLES),
        description="What this process runs with a bus: collect (sources → Kafka), detect (Kafka → rules → "
        "Elasticsearch), api. Without a bus one process runs all three.",
    )

    @field_validator("roles", mode="before")
    @classmethod
    def _roles_from_text(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [role for role in value if role not in ROLES]
        if unknown or not value:
            raise ValueError(f"roles are some of {', '.join(ROLES)}, not {', '.join(unknown) or 'none'}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _roles_need_a_bus(self) -> Settings:
        if self.bus is None and set(self.roles) != set(ROLES):
            raise ValueError("roles other than all three need a bus: section (the scale-out mode)")
        if self.bus is not None and self.forward.url is not None:
            raise ValueError("forward.url and bus: exclude each other: an agency forwards, the central runs the bus")
        return self

    @property
    def topic_prefix(self) -> str:
        """The prefix of secmon's Kafka topics."""
        return (self.bus.topic_prefix if self.bus else None) or self.elasticsearch.index_prefix


# Options outside any section that an environment variable may set (SECMON_<NAME>).
_TOP_LEVEL_OPTIONS = frozenset(("state_dir", "roles"))


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30d``, ``12h``, ``5m``, ``10s`` or ``500ms``."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 5m, 10s or 500ms")
    value, unit = int(match[1]), match[2]
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration.

    ``path`` None means the first of ``DEFAULT_CONFIG_PATHS`` that exists, or defaults only.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        path = next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        data, lines = _read_yaml(path)
    overrides = _environment_overrides(environ)
    merged = _deep_merge(data, overrides)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, lines, overrides)) from None


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
    try:
        node = yaml.compose(text, Loader=SafeLoader)
        data = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc, text)
        where = f"{path}:{problem.line}:{problem.column}" if problem.line else str(path)
        raise ConfigError(f"{where}: invalid YAML: {problem.reason}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the configuration must be a mapping of sections, not {type(data).__name__}")
    lines: dict[tuple[str, ...], int] = {}
    _record_lines(node, (), lines, path)
    return data, lines


_TEXT_KEY_TAGS = frozenset(("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"))
_KEY_KINDS = {"bool": "true or false", "int": "a number", "float": "a number", "null": "null", "timestamp": "a date"}


def _record_lines(
    node: yaml.Node | None, prefix: tuple[str, ...], lines: dict[tuple[str, ...], int], path: Path
) -> None:
    """The line of every key; a key that YAML reads as something else than text is an error at its line."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag not in _TEXT_KEY_TAGS:
                # Else the model can only say "Keys should be strings", without the key or its line.
                written = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                kind = _KEY_KINDS.get(key_node.tag.rpartition(":")[2], "something else")
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: {'.'.join((*prefix, str(written)))}: "
                    f"a key must be text, and YAML reads {written!r} as {kind}: quote it"
                )
            key = (*prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _record_lines(value_node, key, lines, path)


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if name in ES_SHORT_ENV:
            keys = ["elasticsearch", ES_SHORT_ENV[name]]
        elif name.startswith("SECMON_") and "__" in name:
            keys = [part.lower() for part in name[len("SECMON_") :].split("__")]
        elif name.startswith("SECMON_") and name[len("SECMON_") :].lower() in _TOP_LEVEL_OPTIONS:
            keys = [name[len("SECMON_") :].lower()]  # SECMON_STATE_DIR, SECMON_ROLES=collect,detect
        else:
            continue
        target = overrides
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        # A YAML scalar parse gives env values their natural types ("2000" -> 2000, "false" -> False).
        target[keys[-1]] = _env_scalar(value)
        target.setdefault("__env__", {})[keys[-1]] = name
    return overrides


def _env_scalar(value: str) -> Any:
    try:
        parsed = yaml.load(value, Loader=SafeLoader)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key == "__env__":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = _without_env_names(value)
    return merged


def _without_env_names(value: Any) -> Any:
    """An override (a section the file does not have, at any depth) without the variables' names kept beside it."""
    if not isinstance(value, dict):
        return value
    return {k: _without_env_names(v) for k, v in value.items() if k != "__env__"}


def _env_name(overrides: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    if not keys:  # a check of several options together
        return None
    node: Any = overrides
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        name = node.get("__env__", {}).get(keys[-1])
        return str(name) if name else None
    return None


def _file_keys(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """``loc`` without the parts that are not keys in the file, such as a union's ``type`` tag."""
    keys: tuple[str, ...] = ()
    for position, part in enumerate(loc):
        if (*keys, part) in lines or position == len(loc) - 1 or not lines:
            keys = (*keys, part)
    return keys


def _describe(
    exc: ValidationError, path: Path | None, lines: dict[tuple[str, ...], int], overrides: dict[str, Any]
) -> str:
    problems = []
    for error in exc.errors():
        keys = _file_keys(tuple(str(part) for part in error["loc"]), lines)
        dotted = ".".join(keys)
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown option (check its spelling against deploy/secmon.example.yml)"
        env = _env_name(overrides, keys)
        if env:
            where = f"environment variable {env}"
        elif path is not None:
            line = next((lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in lines), None)
            where = f"{path}:{line}" if line else str(path)
        else:
            where = "defaults"
        problems.append(
            f"{where}: {dotted}: {reason}" if dotted else f"{where}: {reason.removeprefix('Value error, ')}"
        )
    return "invalid configuration:\n  " + "\n  ".join(problems)
