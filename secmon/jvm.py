"""What the local Elasticsearch node and the local Kafka broker share: a JVM run as a system user.

Both refuse (or should not) run as root: when secmon runs as root, they run as a system user
it creates once. Both need a JDK, found the same way. Their pid files are checked with
:func:`process_alive`, which does not count a zombie.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from secmon.errors import NodeError
from secmon.log import get_logger

log = get_logger(__name__)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs: it exists (another user's counts) and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    try:
        # /proc/<pid>/stat is "pid (comm) state ...", and comm may hold spaces or parentheses.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def system_user(name: str, service: str) -> pwd.struct_passwd | None:
    """The user to run ``service`` as: ``name`` when secmon runs as root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    log.info(f"Creating a system user to run {service} (it should not run as root).", user=name)
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise NodeError(f"Cannot create user {name} to run {service}: {result.stderr.strip()}")
    user = pwd.getpwnam(name)
    try:
        grp.getgrgid(user.pw_gid)
    except KeyError:
        raise NodeError(f"User {name} has no primary group") from None
    return user


def find_java_home(configured: str | Path | None, environment_variable: str, service: str, setting: str) -> Path:
    """The JDK to run ``service``: ``configured``, then ``$environment_variable``, ``$JAVA_HOME``, the PATH's java."""
    for candidate in (configured, os.environ.get(environment_variable), os.environ.get("JAVA_HOME")):
        if candidate and (Path(candidate) / "bin" / "java").is_file():
            return Path(candidate)
    java = shutil.which("java")
    if java:
        return Path(java).resolve().parent.parent
    raise NodeError(
        f"No Java found to run {service}: install a JDK 17 or newer "
        f"(apt-get install openjdk-17-jre-headless) or set {setting}."
    )


def terminate(pid: int, timeout: float, service: str) -> None:
    """Stop ``pid`` cleanly (SIGTERM) and wait until it is gone; SIGKILL it after ``timeout`` seconds.

    Raises ``PermissionError`` when the process belongs to a user secmon may not signal.
    """
    log.info(f"Stopping {service}.", pid=pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            log.warning(f"{service} did not stop in time; killing it.", timeout=timeout)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.1)
