"""``secmon bench collect``: TCP syslog to Elasticsearch, secmon beside rsyslog with omelasticsearch.

Both collectors are separate processes, receive the same RFC 3164 lines over one TCP connection
(newline framing) from a sender thread of this process, and write into the same Elasticsearch
node. Each is timed from the first byte sent until ``_count`` (after a refresh) of its target
reaches the number of lines; events/s is lines / that time.

* secmon runs as ``secmon up`` with a generated configuration: one TCP syslog source, the
  configured writer settings and a state folder of its own. A higher-priority index template
  turns its event data streams into plain indices (same settings and mapping), because this
  Elasticsearch distribution cannot delete data streams and a benchmark must clean up.
* rsyslog runs as ``rsyslogd -n`` with a private configuration (``imtcp`` into a ruleset with
  one ``omelasticsearch`` action in bulk mode), with secmon's batch size and requests in flight,
  into a plain index created beforehand with the same settings and mapping as secmon's.

secmon does more per line than rsyslog here (it parses each line into ECS fields, writes it to
its crash-safe disk buffer and gives it a deterministic id); rsyslog stores the line with its
syslog header fields and lets Elasticsearch choose the ids. secmon runs first, on the colder node.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.bench.runs import delete_run, free_port, plain_event_indices, process_cpu_seconds
from secmon.config import Settings
from secmon.errors import IndexNotReady, SecmonError
from secmon.log import get_logger
from secmon.store import IndexNames, cluster_url, connect, read_when_ready, wait_for_primaries
from secmon.store.templates import index_settings, load_mapping

log = get_logger(__name__)

APT_INSTALL = "apt-get install -y rsyslog rsyslog-elasticsearch"
# Where Debian, Ubuntu and RPM-based systems keep rsyslog's loadable modules.
RSYSLOG_MODULE_GLOBS = (
    "/usr/lib/*/rsyslog/omelasticsearch.so",
    "/usr/lib/rsyslog/omelasticsearch.so",
    "/usr/lib64/rsyslog/omelasticsearch.so",
)
POLL_SECONDS = 0.15
STALL_SECONDS = 60.0  # no new document for this long once everything is sent: the run failed
START_SECONDS = 120.0
STOP_SECONDS = 30.0


class CollectBenchError(SecmonError):
    """A collector did not store every line it was sent; the message says how far it got and why."""


@dataclass(frozen=True, slots=True)
class CollectResult:
    """One collector's run."""

    name: str
    events: int  # lines sent
    stored: int  # documents counted once the collector had stopped: more than events means duplicates
    seconds: float  # first byte sent until every line was countable in Elasticsearch
    cpu_seconds: float  # the collector process's user + system time over those seconds
    setup: str  # how the collector was configured, for the report

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


@dataclass(frozen=True, slots=True)
class CollectReport:
    """Both runs; ``rsyslog_problem`` says why rsyslog has no result when it has none."""

    secmon: CollectResult
    rsyslog: CollectResult | None
    rsyslog_problem: str | None = None


async def bench_collect(settings: Settings, count: int, rate: float | None = None) -> CollectReport:
    """Send ``count`` syslog lines to secmon, then the same lines to rsyslog; time both into Elasticsearch."""
    lines = syslog_lines(count)
    run = f"{settings.elasticsearch.index_prefix}-benchcollect-{int(time.time())}"
    secmon = await run_secmon(settings, lines, run, rate)
    missing = rsyslog_missing()
    if missing is not None:
        return CollectReport(secmon, None, missing)
    try:
        rsyslog = await run_rsyslog(settings, lines, run, rate)
    except CollectBenchError as exc:
        return CollectReport(secmon, None, str(exc))
    return CollectReport(secmon, rsyslog)


def cpu_comparison(report: CollectReport) -> str:
    """secmon's CPU per event as a multiple of rsyslog's, for the report's last line."""
    # A short run may cost rsyslog less than one clock tick (10 ms) of CPU: no ratio to give then.
    if report.rsyslog is None or report.rsyslog.cpu_seconds == 0:
        return "CPU per event not compared (rsyslog's was under a clock tick)"
    return f"{report.secmon.cpu_us_per_event / report.rsyslog.cpu_us_per_event:.1f}× CPU per event"


# -- the lines ---------------------------------------------------------------------------------

_USERS = ["root", "admin", "oracle", "postgres", "deploy", "test", "ubuntu", "git", "pi", "guest", "ftpuser"]
_ADMINS = [("alice", 1000), ("bob", 1001), ("carol", 1002), ("deploy", 1003)]
_COMMANDS = [
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/usr/bin/journalctl -u sshd",
    "/bin/cat /etc/shadow",
    "/usr/bin/docker ps",
    "/bin/bash",
]
_PORTS = [22, 23, 80, 443, 445, 1433, 3306, 3389, 5900, 8080]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def syslog_lines(count: int, seed: int = 7) -> list[bytes]:
    """``count`` RFC 3164 lines, each ending in a newline: sshd failures, sudo and kernel firewall drops.

    The same seed gives the same lines; each line is one second after the one before, so no
    two lines are alike.
    """
    rng = random.Random(seed)
    start = datetime(2026, 1, 1)
    lines = []
    for n in range(count):
        at = start + timedelta(seconds=n)
        stamp = f"{_MONTHS[at.month - 1]} {at.day:2d} {at:%H:%M:%S}"
        ip = f"{rng.choice((45, 103, 185, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        kind = rng.random()
        if kind < 0.5:
            pri, host, tag = 38, f"bastion-{rng.randrange(1, 4)}", f"sshd[{rng.randrange(900, 65000)}]"
            user, port = rng.choice(_USERS), rng.randrange(1024, 65536)
            message = rng.choice(
                (
                    f"Failed password for invalid user {user} from {ip} port {port} ssh2",
                    f"Failed password for {user} from {ip} port {port} ssh2",
                    f"Invalid user {user} from {ip} port {port}",
                    f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}"
                    f"  user={user}",
                    f"Connection closed by authenticating user {user} {ip} port {port} [preauth]",
                )
            )
        elif kind < 0.7:
            pri, host, tag = 85, f"srv-{rng.randrange(40):02d}", "sudo"
            (admin, uid), tty, command = rng.choice(_ADMINS), rng.randrange(6), rng.choice(_COMMANDS)
            message = rng.choice(
                (
                    f"   {admin} : TTY=pts/{tty} ; PWD=/home/{admin} ; USER=root ; COMMAND={command}",
                    f"pam_unix(sudo:session): session opened for user root(uid=0) by {admin}(uid={uid})",
                    f"   {admin} : 3 incorrect password attempts ; TTY=pts/{tty} ; PWD=/home/{admin} ; USER=root ;"
                    f" COMMAND={command}",
                    f"pam_unix(sudo:auth): authentication failure; logname={admin} uid={uid} euid=0 tty=/dev/pts/{tty}"
                    f" ruser={admin} rhost=  user={admin}",
                )
            )
        else:
            pri, host, tag = 4, f"fw-{rng.randrange(1, 4)}", "kernel"
            protocol = "TCP" if rng.random() < 0.85 else "UDP"
            source_port, destination = rng.randrange(1024, 65536), f"10.0.{rng.randrange(4)}.{rng.randrange(2, 60)}"
            if protocol == "TCP":
                window = rng.choice((1024, 29200, 64240))
                transport = f"SPT={source_port} DPT={rng.choice(_PORTS)} WINDOW={window} RES=0x00 SYN URGP=0"
            else:
                transport = f"SPT={source_port} DPT={rng.choice((53, 123, 161, 1900))} LEN={rng.randrange(8, 512)}"
            message = (
                f"[{100_000 + n + rng.random():.6f}] [UFW BLOCK] IN=eth0 OUT= "
                f"MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={ip} DST={destination} "
                f"LEN={rng.randrange(40, 1500)} TOS=0x00 PREC=0x00 TTL={rng.randrange(30, 250)} "
                f"ID={rng.randrange(65536)} PROTO={protocol} {transport}"
            )
        lines.append(f"<{pri}>{stamp} {host} {tag}: {message}\n".encode())
    return lines


# -- secmon ------------------------------------------------------------------------------------


async def run_secmon(settings: Settings, lines: list[bytes], run: str, rate: float | None = None) -> CollectResult:
    """Run ``secmon up`` with one TCP syslog source under the prefix ``<run>-secmon``; time ``lines`` into it."""
    prefix = f"{run}-secmon"
    names = IndexNames(prefix)
    port = free_port()
    client = connect(settings.elasticsearch)
    with tempfile.TemporaryDirectory(prefix="secmon-bench-collect-") as work:
        work_dir = Path(work)
        config = work_dir / "secmon.yml"
        config.write_text(yaml.safe_dump(_secmon_config(settings, prefix, port, work_dir / "state")))
        output = work_dir / "secmon.log"
        try:
            await plain_event_indices(client, settings, names)
            # Without SECMON_* variables, which would override the generated file (the prefix, say).
            environment = {key: value for key, value in os.environ.items() if not key.startswith("SECMON_")}
            command = [sys.executable, "-m", "secmon", "--config", str(config), "up"]
            collector = _Collector("secmon", command, environment, port, names.events_pattern, output)
            result = await _measure(collector, client, lines, rate)
        except (ApiError, TransportError, IndexNotReady) as exc:
            raise CollectBenchError(f"Elasticsearch failed during secmon's run: {exc}") from exc
        finally:
            await delete_run(client, f"{prefix}*")
            await client.close()
    writer = settings.writer
    setup = (
        "secmon up (a subprocess): syslog source mode tcp, "
        f"disk buffer fsync every {settings.buffer.fsync_interval:g}s, "
        f"writer batch {writer.batch_size} documents / {writer.batch_bytes / 1e6:g} MB, "
        f"{writer.max_in_flight} in flight; ECS documents with deterministic ids, op create"
    )
    return CollectResult("secmon", result.events, result.stored, result.seconds, result.cpu_seconds, setup)


def _secmon_config(settings: Settings, prefix: str, port: int, state_dir: Path) -> dict[str, Any]:
    """The user's configuration with only the benchmark's source, its own prefix and state folder."""
    config = settings.model_dump(mode="json")
    config["elasticsearch"]["url"] = cluster_url(settings.elasticsearch)  # never start or stop a node
    config["elasticsearch"]["index_prefix"] = prefix
    config["sources"] = {"bench": {"type": "syslog", "mode": "tcp", "address": f"127.0.0.1:{port}"}}
    config["state_dir"] = str(state_dir)
    if "metrics" in config:  # the user's own service may hold the metrics port
        config["metrics"]["address"] = None
    config["api"] = {**config.get("api", {}), "enabled": False}  # and the API's
    Settings.model_validate(config)  # a mistake here is the benchmark's, so fail before starting
    return config


# -- rsyslog -----------------------------------------------------------------------------------


def rsyslog_missing() -> str | None:
    """What to install when ``rsyslogd`` or its ``omelasticsearch`` module is absent; None when both are here."""
    if _rsyslogd() is None:
        return f"rsyslogd is not installed; install it with: {APT_INSTALL}"
    if not any(glob.glob(pattern) for pattern in RSYSLOG_MODULE_GLOBS):
        return (
            f"rsyslog's omelasticsearch module is not installed (looked for {', '.join(RSYSLOG_MODULE_GLOBS)}); "
            f"install it with: {APT_INSTALL}"
        )
    return None


async def run_rsyslog(settings: Settings, lines: list[bytes], run: str, rate: float | None = None) -> CollectResult:
    """Run ``rsyslogd`` with imtcp and omelasticsearch into the index ``<run>-rsyslog``; time ``lines`` into it."""
    rsyslogd = _rsyslogd()
    if rsyslogd is None:
        raise CollectBenchError(f"rsyslogd is not installed; install it with: {APT_INSTALL}")
    index = f"{run}-rsyslog"
    port = free_port()
    es = settings.elasticsearch
    with tempfile.TemporaryDirectory(prefix="secmon-bench-collect-") as work:
        work_dir = Path(work)
        config = work_dir / "rsyslog.conf"
        errors = work_dir / "omelasticsearch-errors.json"
        config.write_text(_rsyslog_config(settings, index, port, work_dir, errors))
        status, check = await _run([rsyslogd, "-N1", "-f", str(config)])
        if status != 0:
            raise CollectBenchError(f"rsyslogd refused the benchmark's configuration: {check.strip()[-1000:]}")
        output = work_dir / "rsyslogd.log"
        client = connect(es)
        try:
            await client.indices.create(
                index=index, settings=index_settings(es), mappings=load_mapping("events"), wait_for_active_shards=0
            )
            await wait_for_primaries(client, index)  # before rsyslog's first request and the first count
            command = [rsyslogd, "-n", "-f", str(config), "-i", str(work_dir / "rsyslogd.pid")]
            collector = _Collector("rsyslog", command, dict(os.environ), port, index, output, errors)
            result = await _measure(collector, client, lines, rate)
        except (ApiError, TransportError, IndexNotReady) as exc:
            raise CollectBenchError(f"Elasticsearch failed during rsyslog's run: {exc}") from exc
        finally:
            await delete_run(client, f"{index}*")
            await client.close()
    version = await _rsyslog_version(rsyslogd)
    writer = settings.writer
    setup = (
        f"rsyslogd {version}: imtcp → omelasticsearch bulkmode on, esVersion.major 8, linkedlist action queue, "
        f"batch {writer.batch_size} messages / {writer.batch_bytes / 1e6:g} MB, {writer.max_in_flight} workers; "
        "syslog header fields and the line, ids chosen by Elasticsearch, op index"
    )
    return CollectResult("rsyslog", result.events, result.stored, result.seconds, result.cpu_seconds, setup)


# One JSON document per message, shaped like the ECS fields secmon fills from a syslog header.
_RSYSLOG_TEMPLATE = r"""
template(name="secmon_bench_ecs" type="list" option.json="on") {
  constant(value="{\"@timestamp\":\"")                    property(name="timereported" dateFormat="rfc3339")
  constant(value="\",\"host\":{\"hostname\":\"")          property(name="hostname")
  constant(value="\"},\"process\":{\"name\":\"")          property(name="programname")
  constant(value="\"},\"log\":{\"syslog\":{\"facility\":{\"name\":\"") property(name="syslogfacility-text")
  constant(value="\"},\"severity\":{\"name\":\"")         property(name="syslogseverity-text")
  constant(value="\"}}},\"message\":\"")                  property(name="msg")
  constant(value="\",\"event\":{\"original\":\"")         property(name="rawmsg")
  constant(value="\"}}")
}
"""


def _rsyslog_config(settings: Settings, index: str, port: int, work_dir: Path, errors: Path) -> str:
    """A private rsyslog configuration: imtcp on ``port`` into one omelasticsearch action."""
    es = settings.elasticsearch
    writer = settings.writer
    options = {
        "server": cluster_url(es),
        "template": "secmon_bench_ecs",
        "searchIndex": index,
        # rsyslog before 8.2510 cannot ask this distribution its version (it has no GET /) and
        # would otherwise send the _type field, which Elasticsearch 8 rejects. secmon's client
        # only speaks Elasticsearch 8, so 8 is the only major this benchmark meets.
        "esVersion.major": "8",
        "bulkmode": "on",
        # The same batches and concurrency as secmon's writer, so the two differ in what they do
        # per message rather than in how much they send at once.
        "maxbytes": str(writer.batch_bytes),
        "queue.type": "linkedlist",
        "queue.size": "200000",
        "queue.dequeueBatchSize": str(writer.batch_size),
        "queue.workerThreads": str(writer.max_in_flight),
        "action.resumeRetryCount": "-1",  # like secmon, retry until Elasticsearch takes the batch
        "errorfile": str(errors),
    }
    if es.api_key:
        options["apikey"] = es.api_key  # unknown before rsyslog 8.2510: the -N1 check then says so
    elif es.username:
        options["uid"] = es.username
        options["pwd"] = es.password or ""
    if es.ca_certs:
        options["tls.cacert"] = str(es.ca_certs)
    if not es.verify_certs:
        options["allowunsignedcerts"] = "on"
        options["skipverifyhost"] = "on"
    action = "\n".join(f"    {key}={_rsyslog_string(value)}" for key, value in options.items())
    return (
        f"global(workDirectory={_rsyslog_string(str(work_dir))})\n"
        'module(load="imtcp")\n'
        'module(load="omelasticsearch")\n'
        f"{_RSYSLOG_TEMPLATE}\n"
        # Its own ruleset, so rsyslogd's messages about itself never reach the benchmark's index.
        f'ruleset(name="bench") {{\n  action(type="omelasticsearch"\n{action})\n}}\n'
        f'input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="bench")\n'
    )


def _rsyslog_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rsyslogd() -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")


async def _rsyslog_version(rsyslogd: str) -> str:
    _, about = await _run([rsyslogd, "-v"])  # "rsyslogd  8.2302.0 (aka 2023.02) compiled with: ..."
    words = about.split()
    return words[1] if len(words) > 1 else "(version unknown)"


async def _run(command: list[str]) -> tuple[int, str]:
    """Run a short command; its exit status and its output (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CollectBenchError(f"{' '.join(command)} did not finish within 60s") from None
    return await process.wait(), output.decode(errors="replace")


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Collector:
    """A collector process to measure, and where to look when it fails."""

    name: str
    command: list[str]
    environment: dict[str, str]
    port: int  # where it receives syslog over TCP
    target: str  # the index or index pattern it writes to
    output: Path  # its stdout and stderr
    error_file: Path | None = None  # where it writes the requests Elasticsearch refused

    def diagnosis(self) -> str:
        """The end of its output and its first refused request, indented, for an error message."""
        return _tail(self.output) + (_first_refusal(self.error_file) if self.error_file is not None else "")


@dataclass(frozen=True, slots=True)
class _Measurement:
    events: int
    stored: int
    seconds: float
    cpu_seconds: float


async def _measure(
    collector: _Collector, client: AsyncElasticsearch, lines: list[bytes], rate: float | None
) -> _Measurement:
    """Start the collector, send ``lines`` once it listens, and time them into its target."""
    with collector.output.open("wb") as output:
        # A session of its own: a Ctrl-C at the terminal reaches only this process, which then
        # stops the collector in order.
        process = await asyncio.create_subprocess_exec(
            *collector.command,
            env=collector.environment,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await _wait_listening(collector, process)
        cpu_before = process_cpu_seconds(process.pid)  # start-up is not per-event work
        sender = _TcpSender(("127.0.0.1", collector.port), lines, rate)
        sender.start()
        reached_at = await _wait_stored(collector, process, client, len(lines), sender)
        cpu_seconds = process_cpu_seconds(process.pid) - cpu_before
        await asyncio.to_thread(sender.join)
        assert sender.first_byte_at is not None  # lines were stored, so they were sent
        seconds = reached_at - sender.first_byte_at
    finally:
        await _stop(process)
    # Counted again once the collector has stopped and flushed: duplicates would show here.
    return _Measurement(len(lines), await _count(client, collector.target), seconds, cpu_seconds)


class _TcpSender:
    """Sends lines over one TCP connection from a thread of its own: as fast as taken, or ``rate`` per second."""

    def __init__(self, address: tuple[str, int], lines: list[bytes], rate: float | None = None) -> None:
        self.address = address
        self.lines = lines
        self.rate = rate
        self.first_byte_at: float | None = None  # time.perf_counter() just before the first byte went
        self.error: OSError | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-collect-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            payload = b"".join(self.lines) if self.rate is None else b""
            with socket.create_connection(self.address, timeout=30) as connection:
                connection.settimeout(None)  # a receiver pushing back may hold a send for long
                self.first_byte_at = time.perf_counter()
                if self.rate is None:
                    connection.sendall(payload)
                else:
                    self._send_paced(connection, self.rate)
                connection.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.error = exc
        finally:
            self.done.set()

    def _send_paced(self, connection: socket.socket, rate: float) -> None:
        started = time.perf_counter()
        sent = 0
        while sent < len(self.lines):
            due = min(len(self.lines), int((time.perf_counter() - started) * rate) + 1)
            if due > sent:
                connection.sendall(b"".join(self.lines[sent:due]))
                sent = due
            else:
                time.sleep(max(0.0, sent / rate - (time.perf_counter() - started)))


async def _wait_listening(collector: _Collector, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise CollectBenchError(
                f"{collector.name} exited ({process.returncode}) before listening on port {collector.port}:"
                + collector.diagnosis()
            )
        try:
            # An empty connection is harmless to both collectors.
            _, writer = await asyncio.open_connection("127.0.0.1", collector.port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise CollectBenchError(
        f"{collector.name} did not listen on 127.0.0.1:{collector.port} within {START_SECONDS:.0f}s:"
        + collector.diagnosis()
    )


async def _wait_stored(
    collector: _Collector,
    process: asyncio.subprocess.Process,
    client: AsyncElasticsearch,
    expected: int,
    sender: _TcpSender,
) -> float:
    """Poll the target's count until it reaches ``expected``; returns the time.perf_counter() it did."""
    name = collector.name
    stored, progress_at = 0, time.monotonic()
    while True:
        count, refreshed_at = await _refreshed_count(client, collector.target)
        if count >= expected:
            return refreshed_at
        if sender.error is not None:
            raise CollectBenchError(f"sending to {name} failed after {count:,} lines were stored: {sender.error}")
        if process.returncode is not None:
            raise CollectBenchError(
                f"{name} exited ({process.returncode}) with {count:,} of {expected:,} lines stored:"
                + collector.diagnosis()
            )
        if count > stored or not sender.done.is_set():
            stored, progress_at = count, time.monotonic()
        elif time.monotonic() - progress_at > STALL_SECONDS:
            raise CollectBenchError(
                f"{name} stored {count:,} of {expected:,} lines, then nothing more for {STALL_SECONDS:.0f}s:"
                + collector.diagnosis()
            )
        await asyncio.sleep(POLL_SECONDS)


async def _count(client: AsyncElasticsearch, target: str) -> int:
    count, _ = await _refreshed_count(client, target)
    return count


async def _refreshed_count(client: AsyncElasticsearch, target: str) -> tuple[int, float]:
    """The documents in ``target`` after a refresh, and the time.perf_counter() of that refresh.

    The collector creates its indices while this polls them: a count that meets one before its
    primary has started waits for it (a refresh skips such an index without an error).
    """

    async def count() -> tuple[int, float]:
        # A refresh makes everything indexed so far countable, instead of waiting for refresh_interval.
        await client.indices.refresh(index=target, allow_no_indices=True, ignore_unavailable=True)
        refreshed_at = time.perf_counter()
        response = await client.count(index=target, allow_no_indices=True, ignore_unavailable=True)
        return int(response["count"]), refreshed_at

    return await read_when_ready(client, count)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, so the collector stops as its user would stop it; SIGKILL if it takes too long."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        log.warning("A collector did not stop in time; killing it.", pid=process.pid, timeout=STOP_SECONDS)
        process.kill()
        await process.wait()


# -- helpers -----------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return "\n  " + "\n  ".join(text.splitlines()[-lines:]) if text else ""


def _first_refusal(path: Path) -> str:
    """Elasticsearch's reply to the first request omelasticsearch wrote to its error file, if any."""
    try:
        first = path.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return ""
    try:
        refusal = json.loads(first)
    except ValueError:
        refusal = first
    reply = refusal.get("reply", refusal) if isinstance(refusal, dict) else refusal
    return f"\n  Elasticsearch refused omelasticsearch's first request: {json.dumps(reply)[:800]}"
