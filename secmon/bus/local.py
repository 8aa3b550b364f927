"""The local Kafka broker: one combined KRaft broker and controller on loopback that secmon starts and stops.

Layout under ``LocalKafkaSettings.home``::

    dist/kafka_2.13-<version>/libs/   the broker's jars, fetched once and shared by every broker
    broker-<port>/config/             server.properties and log4j2.properties, written at every start
    broker-<port>/data/               the KRaft metadata log and the topics' partitions
    broker-<port>/logs/server.log     the broker's log (console.log: what the JVM printed)
    broker-<port>/broker.pid          pid of the running broker

Like the local Elasticsearch node, under root the broker runs as ``run_as`` (the same user), it
listens on loopback only, without authentication, and is meant for one machine.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from secmon.bus.distribution import ensure_distribution
from secmon.config import LocalKafkaSettings
from secmon.errors import BrokerError
from secmon.jvm import find_java_home, process_alive, system_user, terminate
from secmon.log import get_logger

log = get_logger(__name__)

NODE_ID = 1  # the only node of the cluster: broker and controller at once
_MAIN_CLASS = "kafka.Kafka"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``secmon kafka status`` reports about the local broker."""

    bootstrap: str
    running: bool
    pid: int | None
    version: str | None = None  # of the jars it runs, when it answers
    cluster_id: str | None = None
    topics: int | None = None  # topics clients see (internal ones excluded)
    started: bool = False  # this call started the broker (else it was running already)


class LocalKafka:
    """Start, stop and inspect the local broker described by ``settings``."""

    def __init__(self, settings: LocalKafkaSettings) -> None:
        self.settings = settings
        self.dir = settings.home / f"broker-{settings.port}"
        self.pid_file = self.dir / "broker.pid"
        self.config_file = self.dir / "config" / "server.properties"
        self.data_dir = self.dir / "data"
        self.logs_dir = self.dir / "logs"

    @property
    def bootstrap(self) -> str:
        """The bootstrap server clients connect to (``host:port``)."""
        return f"{self.settings.host}:{self.settings.port}"

    # -- process ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this broker's running process, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        # The pid may have been reused since the broker died: it must be Kafka, run with this
        # broker's server.properties (on its command line, readable whoever runs it).
        if _MAIN_CLASS.encode() not in arguments or str(self.config_file).encode() not in arguments:
            return None
        return pid if process_alive(pid) else None

    def start(self, *, fresh: bool = False) -> BrokerStatus:
        """Fetch the jars if needed, start the broker and wait until it answers a metadata request.

        ``fresh`` empties the broker's data (topics, offsets, the cluster id) first, when (and only
        when) this call starts it. Concurrent callers are serialized by a lock, so the second finds
        the broker the first started.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir.parent / f".broker-{self.settings.port}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.pid() is not None:
                return self.wait_ready()
            if fresh:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            return dataclasses.replace(self._start(), started=True)

    def _start(self) -> BrokerStatus:
        self._check_ports_free()
        dist = ensure_distribution(self.settings.home, self.settings.version)
        user = system_user(self.settings.run_as, "Kafka")
        self._prepare_dir(user)
        java = (
            find_java_home(self.settings.java_home, "KAFKA_JAVA_HOME", "Kafka", "the broker's java_home")
            / "bin"
            / "java"
        )
        classpath = str(dist / "libs" / "*")
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(java, classpath, user)
        command = [
            str(java),
            f"-Xms{self.settings.heap}",
            f"-Xmx{self.settings.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            # A broker out of memory exits (and says so in console.log) rather than limping on.
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'config' / 'log4j2.properties'}",
            "-cp",
            classpath,
            _MAIN_CLASS,
            str(self.config_file),
        ]
        log.info("Starting Kafka.", version=self.settings.version, bootstrap=self.bootstrap, java=java)
        # The shell starts the JVM in the background and prints its pid: the broker outlives this
        # process (as Elasticsearch's -d does) and is never left as a zombie child of it.
        launcher = ["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 & echo $!', str(self.logs_dir / "console.log")]
        result = self._run([*launcher, *command], user, start_new_session=True)
        try:
            pid = int(result.stdout.strip())
        except ValueError:
            raise BrokerError(f"Kafka did not start: {self._failure_reason(result.stderr)}") from None
        self.pid_file.write_text(f"{pid}\n")
        return self.wait_ready()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the broker cleanly (SIGTERM), kill it after ``timeout`` seconds; a no-op when it is not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        bound = self.settings.stop_timeout if timeout is None else timeout
        try:
            terminate(pid, bound, "Kafka")
        except PermissionError:
            raise BrokerError(
                f"Not allowed to stop the broker on {self.bootstrap} (pid {pid}): it runs as another user; "
                "stop it as root or as that user."
            ) from None
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> BrokerStatus:
        """Whether the broker runs, and its cluster id and topic count when it answers."""
        pid = self.pid()
        if pid is None:
            return BrokerStatus(self.bootstrap, running=False, pid=None)
        try:
            return self._probe(pid, timeout=5.0)
        except KafkaException:
            return BrokerStatus(self.bootstrap, running=True, pid=pid)

    def wait_ready(self) -> BrokerStatus:
        """Wait until the broker answers a metadata request."""
        deadline = time.monotonic() + self.settings.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is None:
                raise BrokerError(f"Kafka exited while starting: {self._failure_reason('')}")
            # A plain connect first: an admin client would log every refused connection.
            if _listening(self.settings.host, self.settings.port):
                try:
                    return self._probe(pid, timeout=2.0)
                except KafkaException as exc:
                    last_error = exc
            time.sleep(0.25)
        raise BrokerError(
            f"Kafka at {self.bootstrap} did not answer within {self.settings.start_timeout:.0f}s "
            f"(last error: {last_error}); see {self.logs_dir / 'server.log'}"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _probe(self, pid: int, *, timeout: float) -> BrokerStatus:
        # log_level 2 (critical): the failures the probe cares about come back as exceptions.
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})
        metadata = admin.list_topics(timeout=timeout)
        topics = [name for name in metadata.topics if not name.startswith("__")]
        return BrokerStatus(
            self.bootstrap,
            running=True,
            pid=pid,
            version=self.settings.version,
            cluster_id=metadata.cluster_id,
            topics=len(topics),
        )

    def _check_ports_free(self) -> None:
        for name, port in (("port", self.settings.port), ("controller_port", self.settings.controller_port)):
            if _listening(self.settings.host, port):
                raise BrokerError(
                    f"Something already listens on {self.settings.host}:{port} but it is not secmon's broker "
                    f"in {self.dir}. Choose another {name} for the local broker."
                )

    def _prepare_dir(self, user: pwd.struct_passwd | None) -> None:
        config = self.dir / "config"
        for folder in (config, self.data_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        host, port, controller = self.settings.host, self.settings.port, self.settings.controller_port
        properties = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            # A static quorum of this one node: the controller's port may change between starts.
            "controller.quorum.voters": f"{NODE_ID}@{host}:{controller}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            # One broker: the internal topics cannot have more than one replica.
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            # Fewer group-coordinator partitions than the default 50: the first consumer group
            # creates them all, which is slow on a small machine and useless on a single broker.
            "offsets.topic.num.partitions": 10,
            # A single broker has no other group members to wait for before the first assignment.
            "group.initial.rebalance.delay.ms": 0,
        }
        self.config_file.write_text(
            "# Written by secmon at every start; change the local broker's settings instead.\n"
            + "".join(f"{key}={value}\n" for key, value in properties.items())
        )
        (config / "log4j2.properties").write_text(_log4j2_properties(self.logs_dir))
        if user is not None:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    def _format_storage(self, java: Path, classpath: str, user: pwd.struct_passwd | None) -> None:
        cluster_id = _new_cluster_id()
        log.info("Formatting the broker's storage.", cluster_id=cluster_id, data=self.data_dir)
        command = [
            str(java),
            f"-Xmx{self.settings.heap}",
            f"-Dlog4j2.configurationFile={self.dir / 'config' / 'log4j2.properties'}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # one argument: an id may begin with "-"
            "--config",
            str(self.config_file),
        ]
        result = self._run(command, user)
        if result.returncode != 0:
            reason = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise BrokerError(f"Cannot format the storage of Kafka in {self.data_dir}: {' / '.join(reason)}")

    def _run(
        self, command: list[str], user: pwd.struct_passwd | None, *, start_new_session: bool = False
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        try:
            return subprocess.run(
                command,
                cwd=self.dir,
                capture_output=True,
                text=True,
                timeout=self.settings.start_timeout,
                check=False,
                start_new_session=start_new_session,
                **kwargs,
            )
        except OSError as exc:
            who = f"user {self.settings.run_as}" if user else "this user"
            raise BrokerError(
                f"Cannot run {command[0]} as {who}: {exc.strerror}. Every folder above "
                f"{self.settings.home} must be readable by {who}; choose another home for the broker."
            ) from None
        except subprocess.TimeoutExpired:
            raise BrokerError(
                f"{' '.join(command[:1])} did not finish within {self.settings.start_timeout:.0f}s"
            ) from None

    def _failure_reason(self, stderr: str) -> str:
        lines = [line for line in stderr.splitlines() if line.strip()]
        for name in ("server.log", "console.log"):
            path = self.logs_dir / name
            if path.is_file():
                lines += path.read_text(errors="replace").splitlines()[-200:]
        for line in lines:
            if " ERROR " in line or "Exception" in line or "Error:" in line:
                return line.strip()[:500] + f"; see {self.logs_dir}"
        return (lines[-1].strip()[:500] if lines else "no output") + f"; see {self.logs_dir}"


def _log4j2_properties(logs: Path) -> str:
    """Log4j 2's configuration: the broker's log in ``logs/server.log``, rolled at 50 MB, five kept."""
    return f"""# Written by secmon at every start.
status = warn
# Kafka logs through its whole shutdown, after the JVM's shutdown hooks have started: Log4j's own
# hook would close the log file first.
shutdownHook = disable
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = {logs / "server.log"}
appender.server.filePattern = {logs / "server.log"}.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
"""


def _new_cluster_id() -> str:
    """A random cluster id in Kafka's form: 16 bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False
