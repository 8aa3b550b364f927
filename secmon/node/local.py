"""The local Elasticsearch node: one single-node cluster on loopback that secmon starts and stops.

Layout under ``elasticsearch.local.home``::

    dist/elasticsearch-<version>/   the unpacked distribution, shared by every node
    node-<port>/config/             elasticsearch.yml, jvm.options, log4j2.properties
    node-<port>/data/, logs/        the node's data and logs
    node-<port>/node.pid            pid of the running node

Elasticsearch refuses to run as root, so under root the node runs as ``local.run_as``.
Security is off: the node listens on loopback only and is meant for one machine.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmon.config import LocalNodeSettings
from secmon.errors import NodeError
from secmon.jvm import find_java_home, system_user, terminate
from secmon.log import get_logger
from secmon.node.distribution import ensure_distribution

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``secmon es status`` reports about the local node."""

    url: str
    running: bool
    pid: int | None
    version: str | None = None
    health: str | None = None
    started: bool = False  # this call started the node (else it was running already)


class LocalNode:
    """Start, stop and inspect the local node described by ``settings``."""

    def __init__(self, settings: LocalNodeSettings) -> None:
        self.settings = settings
        self.dir = settings.home / f"node-{settings.port}"
        self.pid_file = self.dir / "node.pid"

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    # -- process ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this node's running process, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # The pid may have been reused since the node died: it must be Elasticsearch, started in
        # this node's folder (its config path is in the environment, not on the command line).
        if b"org.elasticsearch" not in cmdline:
            return None
        try:
            # Elasticsearch moves into its logs folder, inside this node's folder.
            return pid if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(self.dir) else None
        except OSError:
            return pid  # another user's process we may not inspect; trust the pid file

    def start(self, *, fresh: bool = False) -> NodeStatus:
        """Fetch the distribution if needed, start the node and wait until it is healthy.

        ``fresh`` empties the node's data folder first, when (and only when) this call starts it.
        Concurrent callers (two secmon commands, two test sessions) are serialized by a lock,
        so the second finds the node the first started.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir.parent / f".node-{self.settings.port}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.pid() is not None:
                return self.wait_healthy()
            if fresh:
                shutil.rmtree(self.dir / "data", ignore_errors=True)
            return dataclasses.replace(self._start(), started=True)

    def _start(self) -> NodeStatus:
        self._check_port_free()
        dist = ensure_distribution(self.settings.home, self.settings.version)
        self._prepare_dir(dist)
        user = system_user(self.settings.run_as, "Elasticsearch")
        java_home = find_java_home(
            self.settings.java_home, "ES_JAVA_HOME", "Elasticsearch", "elasticsearch.local.java_home"
        )
        env = {
            **os.environ,
            "ES_PATH_CONF": str(self.dir / "config"),
            "ES_JAVA_HOME": str(java_home),
            "ES_JAVA_OPTS": f"-Xms{self.settings.heap} -Xmx{self.settings.heap}",
        }
        env.pop("JAVA_HOME", None)
        log.info("Starting Elasticsearch.", version=self.settings.version, url=self.url, java_home=java_home)
        command = [str(dist / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)]
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        try:
            result = subprocess.run(
                command,
                env=env,
                cwd=self.dir,
                capture_output=True,
                text=True,
                timeout=self.settings.start_timeout,
                check=False,
                **kwargs,
            )
        except OSError as exc:
            who = f"user {self.settings.run_as}" if user else "this user"
            raise NodeError(
                f"Cannot run {command[0]} as {who}: {exc.strerror}. Every folder above "
                f"{self.settings.home} must be readable by {who}; set elasticsearch.local.home elsewhere."
            ) from None
        except subprocess.TimeoutExpired:
            raise NodeError(f"Elasticsearch did not start within {self.settings.start_timeout:.0f}s") from None
        if result.returncode != 0:
            raise NodeError(
                f"Elasticsearch did not start (exit {result.returncode}): {self._failure_reason(result.stderr)}"
            )
        return self.wait_healthy()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node and wait until its process is gone; a no-op when it is not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        terminate(pid, timeout, "Elasticsearch")
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> NodeStatus:
        """Whether the node runs, and its version and health when it answers."""
        pid = self.pid()
        if pid is None:
            return NodeStatus(self.url, running=False, pid=None)
        try:
            return self._probe(pid)
        except OSError:
            return NodeStatus(self.url, running=True, pid=pid)

    def wait_healthy(self) -> NodeStatus:
        """Wait until the node answers with yellow or green health."""
        deadline = time.monotonic() + self.settings.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is None:
                raise NodeError(f"Elasticsearch exited while starting: {self._failure_reason('')}")
            try:
                status = self._probe(pid)
                if status.health in ("yellow", "green"):
                    return status
            except OSError as exc:
                last_error = exc
            time.sleep(0.25)
        raise NodeError(
            f"Elasticsearch at {self.url} was not healthy after {self.settings.start_timeout:.0f}s "
            f"(last error: {last_error}); see {self.dir / 'logs'}"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _probe(self, pid: int) -> NodeStatus:
        health = _get_json(f"{self.url}/_cluster/health?timeout=1s")
        # The integ-test distribution has no root endpoint (GET /), so read the version from _nodes.
        nodes = _get_json(f"{self.url}/_nodes/_local?filter_path=nodes.*.version")
        local: dict[str, Any] = next(iter(nodes.get("nodes", {}).values()), {})
        version = local.get("version")
        return NodeStatus(self.url, running=True, pid=pid, version=version, health=health.get("status"))

    def _check_port_free(self) -> None:
        try:
            _get_json(f"{self.url}/_cluster/health?timeout=1s")
        except OSError:
            return
        raise NodeError(
            f"Something already answers on {self.url} but it is not secmon's node in {self.dir}. "
            "Set elasticsearch.url to use it, or elasticsearch.local.port to start another node."
        )

    def _prepare_dir(self, dist: Path) -> None:
        config = self.dir / "config"
        for sub in ("data", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if not (config / "jvm.options").is_file():
            shutil.copytree(dist / "config", config, dirs_exist_ok=True)
        settings = {
            "cluster.name": "secmon",
            "node.name": f"secmon-{self.settings.port}",
            "discovery.type": "single-node",
            "network.host": self.settings.host,
            "http.port": self.settings.port,
            "path.data": str(self.dir / "data"),
            "path.logs": str(self.dir / "logs"),
            "xpack.security.enabled": False,
        }
        (config / "elasticsearch.yml").write_text(
            "# Written by secmon at every start; edit elasticsearch.local in secmon's config instead.\n"
            + "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())
        )
        user = system_user(self.settings.run_as, "Elasticsearch")
        if user is not None:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    def _failure_reason(self, stderr: str) -> str:
        lines = [line for line in stderr.splitlines() if line.strip()]
        log_file = self.dir / "logs" / "secmon.log"
        if log_file.is_file():
            lines += [line for line in log_file.read_text(errors="replace").splitlines() if "ERROR" in line]
        for line in lines:
            if "Exception" in line or "ERROR" in line:
                return line.strip()[:500]
        return (lines[-1].strip()[:500] if lines else "no output") + f"; see {self.dir / 'logs'}"


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            data: dict[str, Any] = json.load(response)
            return data
    except urllib.error.HTTPError as exc:
        # A 408 from _cluster/health still carries the health document.
        body = exc.read()
        try:
            data = json.loads(body)
        except ValueError:
            raise OSError(f"HTTP {exc.code} from {url}") from None
        return data
