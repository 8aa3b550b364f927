"""``secmon bench scale``: end-to-end events/s of the single process and of 1, 2, 4 … detect workers over Kafka.

Every configuration gets the same syslog lines over one TCP connection, the shipped rules and
the same Elasticsearch, one after the other in one run:

* **single**: one ``secmon up`` without a ``bus:`` section, as secmon always ran: a TCP syslog
  source, detection in the pipeline, the disk buffer, the writer.
* **bus, k workers**: one ``secmon up --role collect`` (the TCP syslog source, producing to
  ``<prefix>.events``) and k ``secmon up --role detect`` processes (detection, correlation,
  the writer), over a fresh local Kafka broker of the benchmark's own.

Each process is a subprocess with a configuration file and a state folder of its own in a
temporary folder (metrics and API off). A configuration is measured once its processes said
they are up, the syslog port connects, both consumer groups have their k members owning every
partition, and the processes have gone idle after their start. Then:

* **seconds**: from the first byte sent until ``_count`` of ``<prefix>-events-*`` (after a
  refresh, polled every 0.5 s) reaches the number of lines, and in bus mode until both consumer
  groups have committed everything too (their total lag is 0); events/s is lines / seconds.
* **CPU**: user + system time of each secmon process (``/proc/<pid>/stat``) between the first
  byte and that moment, per event: all secmon processes together, the collector alone, the
  detect workers alone. The Kafka broker's, and the whole machine's busy time (``/proc/stat``:
  Elasticsearch, Kafka, this process and whatever else runs), are measured too, because on a
  small machine they share the cores with secmon and decide where the curve flattens.
* **lag**: the detect group's total lag, sampled every 0.5 s.

Each configuration writes under an index and topic prefix of its own, deleted afterwards (a
higher-priority template makes the event data streams plain indices with the same settings and
mapping, as ``bench collect`` does: this Elasticsearch distribution cannot delete data streams).
Events are counted again once the processes have stopped, so duplicates would show; the alerts
stored are counted then too, and should be the same for every configuration.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from secmon.bench.collect import syslog_lines
from secmon.bench.runs import CLOCK_TICKS, connects, delete_run, free_port, plain_event_indices, process_cpu_seconds
from secmon.bus import LocalKafka
from secmon.bus.client import admin
from secmon.bus.lag import group_lag, total_lag
from secmon.bus.topics import Topics
from secmon.config import SHIPPED_RULES_DIR, LocalKafkaSettings, Settings
from secmon.errors import BrokerError, IndexNotReady, SecmonError
from secmon.log import get_logger
from secmon.store import IndexNames, cluster_url, connect, read_when_ready

log = get_logger(__name__)

SAMPLE_SECONDS = 0.5  # between two counts in Elasticsearch and two lag readings
START_SECONDS = 240.0  # several processes compiling the rules at once on two cores take a while
STOP_SECONDS = 60.0
STALL_SECONDS = 60.0  # nothing new stored or committed for this long once everything is sent: failed
IDLE_SECONDS = 30.0  # the longest wait for the processes to finish their start-up work
IDLE_CPU_SHARE = 0.05  # a process using less of a core than this is idle (polling Kafka, timers)
HOSTS_PER_NAME = 64  # each host of bench collect's lines becomes this many, for a spread over partitions
LINES_PER_SECOND = 1000  # of event time
BRUTE_FORCE_EVERY = 8  # every 8th line is a failed root login from one of the attackers
ATTACKERS = ("198.51.100.23", "203.0.113.77")
_HEADER = re.compile(rb"^(<\d+>)([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ")
_SPARKS = "▁▂▃▄▅▆▇█"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ScaleBenchError(SecmonError):
    """A configuration did not start, or did not store every line; the message says how far it got and why."""


@dataclass(frozen=True, slots=True)
class LagSample:
    """The total lag of both consumer groups at ``at`` seconds after the first byte was sent."""

    at: float
    detect: int
    correlate: int


@dataclass(frozen=True, slots=True)
class ScaleResult:
    """One configuration's run."""

    name: str  # as printed: single, or bus and the number of detect workers
    workers: int  # detect workers; 0 for the single process
    events: int  # lines sent
    stored: int  # events counted once the processes had stopped: more than events means duplicates
    alerts: int  # alerts stored, counted then too
    seconds: float
    collector_cpu: float  # CPU seconds of the collector; of the whole single process
    detect_cpu: float  # CPU seconds of the detect workers together; 0 for the single process
    kafka_cpu: float | None  # CPU seconds of the broker; None without a bus
    machine_cpu: float  # busy CPU seconds of the whole machine
    lag: list[LagSample] = field(default_factory=list)
    partition_events: list[int] = field(default_factory=list)  # events on each partition of <prefix>.events

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def secmon_cpu(self) -> float:
        return self.collector_cpu + self.detect_cpu

    @property
    def secmon_us_per_event(self) -> float:
        return self.secmon_cpu / self.events * 1e6

    @property
    def collector_us_per_event(self) -> float | None:
        """The collector's CPU per event; None for the single process, which does everything in one."""
        return self.collector_cpu / self.events * 1e6 if self.workers else None

    @property
    def detect_us_per_event(self) -> float | None:
        return self.detect_cpu / self.events * 1e6 if self.workers else None

    @property
    def kafka_us_per_event(self) -> float | None:
        return self.kafka_cpu / self.events * 1e6 if self.kafka_cpu is not None else None

    @property
    def max_lag(self) -> int | None:
        return max((sample.detect for sample in self.lag), default=0) if self.workers else None

    @property
    def events_per_secmon_cpu_second(self) -> float:
        """What one core fully used by secmon handles: events per second of secmon's CPU time."""
        return self.events / self.secmon_cpu if self.secmon_cpu > 0 else float("inf")

    @property
    def events_per_machine_cpu_second(self) -> float:
        """Events per busy CPU second of the whole machine (secmon, Kafka, Elasticsearch and the rest)."""
        return self.events / self.machine_cpu if self.machine_cpu > 0 else float("inf")

    @property
    def cores_busy(self) -> float:
        """Cores the whole machine kept busy on average during the run."""
        return self.machine_cpu / self.seconds

    def lag_every(self, seconds: float = 2.0) -> list[int]:
        """The detect group's highest lag in each step of ``seconds`` of the run."""
        step = max(1, round(seconds / SAMPLE_SECONDS))
        lags = [sample.detect for sample in self.lag]
        return [max(lags[i : i + step]) for i in range(0, len(lags), step)]


@dataclass(frozen=True, slots=True)
class ScaleReport:
    """Every configuration's run, in the order they ran."""

    results: list[ScaleResult]
    partitions: int
    bootstrap: str | None  # the benchmark's broker; None when only the single process ran
    elasticsearch: str
    cores: int

    @property
    def single(self) -> ScaleResult:
        return self.results[0]


def parse_workers(text: str) -> list[int]:
    """``"1,2,4"`` → ``[1, 2, 4]``: positive, without repeats, in the order given."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of worker counts, such as 1,2,4") from None
    if not counts or any(count < 1 for count in counts):
        raise ValueError(f"{text!r}: give one or more worker counts of at least 1, such as 1,2,4")
    return list(dict.fromkeys(counts))


def scale_lines(count: int, seed: int = 7) -> list[bytes]:
    """``count`` RFC 3164 lines: bench collect's mix, from many hosts, at a busy site's pace, with SSH brute force.

    Three changes to bench collect's lines, each for the scale-out mode to be measured fairly:

    * The partition key is organization and host, and bench collect's 46 hosts (half the lines
      from three sshd hosts) would leave most of four partitions' work on one or two: each host
      name becomes one of ``HOSTS_PER_NAME`` (``bastion-2`` → ``bastion-2-17``), as the hosts
      of a larger site spread over the partitions.
    * Event time advances by one second every ``LINES_PER_SECOND`` lines, not every line: the
      lines arrive about that fast, as a live feed's would. At one line per second a run would
      span days of event time, so partitions read a few thousand lines apart would be hours
      apart, far beyond what the correlation windows accept as late.
    * Every ``BRUTE_FORCE_EVERY``-th line is a failed root login from one of two attackers
      against many hosts (whose events are on every partition), so the brute force
      correlation counts across partitions and fires, not only routes.
    """
    rng = random.Random(seed)
    start = datetime(2026, 1, 1)
    lines = []
    for n, line in enumerate(syslog_lines(count, seed)):
        header = _HEADER.match(line)
        assert header is not None  # syslog_lines writes every line in this form
        priority, host = header.group(1).decode(), header.group(3).decode()
        at = start + timedelta(seconds=n // LINES_PER_SECOND)
        stamp = f"{_MONTHS[at.month - 1]} {at.day:2d} {at:%H:%M:%S}"
        spread = rng.randrange(HOSTS_PER_NAME)
        if n % BRUTE_FORCE_EVERY == BRUTE_FORCE_EVERY - 1:
            attacker = ATTACKERS[(n // BRUTE_FORCE_EVERY) % len(ATTACKERS)]
            lines.append(
                f"<38>{stamp} bastion-1-{spread} sshd[{rng.randrange(900, 65000)}]: Failed password for root "
                f"from {attacker} port {rng.randrange(1024, 65536)} ssh2\n".encode()
            )
        else:
            lines.append(f"{priority}{stamp} {host}-{spread} ".encode() + line[header.end() :])
    return lines


def sparkline(values: Sequence[int], width: int = 60) -> str:
    """``values`` as a row of block characters, at most ``width`` (each the largest of the values it stands for)."""
    if not values:
        return ""
    size = -(-len(values) // width)  # ceiling: values per character
    peaks = [max(values[i : i + size]) for i in range(0, len(values), size)]
    top = max(peaks)
    if top == 0:
        return _SPARKS[0] * len(peaks)
    return "".join(_SPARKS[min(len(_SPARKS) - 1, peak * len(_SPARKS) // (top + 1))] for peak in peaks)


def compact(number: float) -> str:
    """``1234`` → ``1.2k``, ``2500000`` → ``2.5M``: for rows of many numbers."""
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{unit}"
    return f"{number:.0f}"


async def bench_scale(
    settings: Settings,
    messages: int,
    *,
    workers: Sequence[int],
    partitions: int,
    kafka_port: int,
    progress: Callable[[str], None] | None = None,
) -> ScaleReport:
    """Run the single process, then each ``workers`` count over the local broker on ``kafka_port``; see the module."""
    tell = progress or (lambda _: None)
    too_many = [count for count in workers if count > partitions]
    if too_many:
        # A worker beyond the partitions idles, and the group could never be all owners.
        raise ScaleBenchError(f"{max(too_many)} detect workers need at least {max(too_many)} partitions")
    lines = scale_lines(messages)
    run = f"{settings.elasticsearch.index_prefix}-scale-{int(time.time())}"
    client = connect(settings.elasticsearch)
    broker: LocalKafka | None = None
    started_broker = False
    results: list[ScaleResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="secmon-bench-scale-") as work:
            work_dir = Path(work)
            tell(f"single process: {messages:,} lines …")
            results.append(await _run_configuration(settings, client, lines, _Layout(f"{run}-single", 0), work_dir))
            if workers:
                broker = LocalKafka(_broker_settings(settings, kafka_port))
                tell(f"Starting the local Kafka broker on {broker.bootstrap} …")
                started_broker = (await asyncio.to_thread(broker.start, fresh=True)).started
            for count in workers:
                assert broker is not None
                tell(f"bus ×{count}: one collector, {count} detect worker(s), {messages:,} lines …")
                layout = _Layout(f"{run}-bus{count}", count, broker, partitions)
                results.append(await _run_configuration(settings, client, lines, layout, work_dir))
    finally:
        await client.close()
        if broker is not None and started_broker:
            tell("Stopping the local Kafka broker …")
            await asyncio.to_thread(broker.stop)
    return ScaleReport(
        results,
        partitions,
        broker.bootstrap if broker is not None else None,
        cluster_url(settings.elasticsearch),
        os.cpu_count() or 1,
    )


def _broker_settings(settings: Settings, port: int) -> LocalKafkaSettings:
    """The configured local broker's settings (jars, heap, java) on the benchmark's own two ports."""
    base = settings.bus.local if settings.bus is not None else LocalKafkaSettings()  # type: ignore[call-arg]
    return LocalKafkaSettings.model_validate({**base.model_dump(), "port": port, "controller_port": port + 1})


# -- one configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """What one configuration runs: its prefix, and k detect workers over ``broker`` (0: the single process)."""

    prefix: str
    workers: int
    broker: LocalKafka | None = None
    partitions: int = 1

    @property
    def name(self) -> str:
        return f"bus ×{self.workers}" if self.workers else "single"

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)


@dataclass(slots=True)
class _Process:
    """One ``secmon up`` subprocess of a configuration."""

    name: str
    command: list[str]
    log_path: Path
    ready_text: str  # what it writes once it runs
    process: asyncio.subprocess.Process | None = None

    async def start(self, environment: dict[str, str]) -> None:
        with self.log_path.open("wb") as output:
            # A session of its own: a Ctrl-C at the terminal reaches only the benchmark, which
            # then stops its processes in order.
            self.process = await asyncio.create_subprocess_exec(
                *self.command, env=environment, stdout=output, stderr=asyncio.subprocess.STDOUT, start_new_session=True
            )

    @property
    def exit_code(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def ready(self) -> bool:
        try:
            return self.ready_text in self.log_path.read_text(errors="replace")
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return process_cpu_seconds(self.process.pid)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"\n  {self.name}:\n  " + "\n  ".join(text.splitlines()[-lines:]) if text else ""

    async def stop(self) -> None:
        """SIGTERM, as its user would stop it (it flushes and commits); SIGKILL if that takes too long."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            log.warning("A secmon process did not stop in time; killing it.", name=self.name, pid=self.process.pid)
            self.process.kill()
            await self.process.wait()


@dataclass(frozen=True, slots=True)
class _Measurement:
    seconds: float
    collector_cpu: float
    detect_cpu: float
    kafka_cpu: float | None
    machine_cpu: float
    lag: list[LagSample]
    partition_events: list[int]


async def _run_configuration(
    settings: Settings, client: AsyncElasticsearch, lines: list[bytes], layout: _Layout, work_dir: Path
) -> ScaleResult:
    """Start the configuration's processes, measure ``lines`` through them, stop them, delete what they made."""
    names = IndexNames(layout.prefix)
    folder = work_dir / layout.prefix
    folder.mkdir()
    syslog_port = free_port()
    processes = _processes(settings, layout, folder, syslog_port)
    # Without SECMON_* variables, which would override the generated files (the prefix, say).
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SECMON_")}
    try:
        await plain_event_indices(client, settings, names)
        try:
            for process in processes:
                await process.start(environment)
            await _wait_ready(processes, syslog_port, layout)
            await _wait_idle(processes)
            measured = await _measure(
                processes, syslog_port=syslog_port, client=client, names=names, lines=lines, layout=layout
            )
        finally:
            await asyncio.gather(*(process.stop() for process in processes))
        # Counted once everything is flushed and the processes are gone: duplicates would show here.
        stored, _ = await _refreshed_count(client, names.events_pattern)
        alerts, _ = await _refreshed_count(client, names.alerts)
    except (ApiError, TransportError, IndexNotReady) as exc:
        raise ScaleBenchError(f"Elasticsearch failed during the {layout.name} run: {exc}") from exc
    finally:
        await delete_run(client, f"{layout.prefix}-*")
        if layout.broker is not None:
            await asyncio.to_thread(_delete_topics, layout.broker.bootstrap, layout.topics)
    return ScaleResult(
        layout.name,
        layout.workers,
        len(lines),
        stored,
        alerts,
        measured.seconds,
        measured.collector_cpu,
        measured.detect_cpu,
        measured.kafka_cpu,
        measured.machine_cpu,
        measured.lag,
        measured.partition_events,
    )


def _processes(settings: Settings, layout: _Layout, folder: Path, syslog_port: int) -> list[_Process]:
    """The collector (or the single process) first, then the detect workers, each with its configuration file."""
    up = [sys.executable, "-m", "secmon"]
    source = {"bench": {"type": "syslog", "mode": "tcp", "address": f"127.0.0.1:{syslog_port}"}}
    if not layout.workers:
        config = _write_config(settings, layout, folder / "single", source)
        return [
            _Process(
                "single", [*up, "--config", str(config), "up", "--no-panel"], folder / "single.log", "secmon is up"
            )
        ]
    roles = [("collector", "collect", source)] + [(f"detect-{n}", "detect", {}) for n in range(1, layout.workers + 1)]
    return [
        _Process(
            name,
            [
                *up,
                "--config",
                str(_write_config(settings, layout, folder / name, sources)),
                "up",
                "--no-panel",
                "--role",
                role,
            ],
            folder / f"{name}.log",
            "Scale-out roles running",
        )
        for name, role, sources in roles
    ]


def _write_config(settings: Settings, layout: _Layout, state_dir: Path, sources: dict[str, Any]) -> Path:
    """The user's configuration with the benchmark's prefix, source, rules, bus and a state folder of its own."""
    config = settings.model_dump(mode="json")
    config["elasticsearch"]["url"] = cluster_url(settings.elasticsearch)  # never start or stop a node
    config["elasticsearch"]["index_prefix"] = layout.prefix
    config["sources"] = sources
    config["state_dir"] = str(state_dir)
    config["metrics"] = {"address": None}  # the user's own service may hold the metrics port
    config["api"] = {**config.get("api", {}), "enabled": False}  # and the API's
    # The same rules for every configuration, whatever the user's: the shipped ones, defaults otherwise.
    config["detection"] = {"rules": [str(SHIPPED_RULES_DIR)]}
    config["forward"] = {"url": None}
    config["roles"] = ["collect", "detect", "api"]  # --role picks this process's
    if layout.broker is None:
        config["bus"] = None
    else:
        bus = {**(config.get("bus") or {})}
        bus.pop("local", None)
        config["bus"] = {
            **bus,
            "bootstrap_servers": layout.broker.bootstrap,
            "topic_prefix": layout.prefix,
            "group": None,
            "partitions": layout.partitions,
            "replication_factor": 1,
            "options": {},  # the user's are for their own cluster (SASL, TLS), not this broker
        }
    Settings.model_validate(config)  # a mistake here is the benchmark's, so fail before starting
    path = state_dir.with_suffix(".yml")
    path.write_text(yaml.safe_dump(config))
    return path


async def _wait_ready(processes: list[_Process], syslog_port: int, layout: _Layout) -> None:
    """Until every process says it runs, the syslog port connects and both groups have all their members."""
    deadline = time.monotonic() + START_SECONDS
    # One client for the whole wait, held here: a dropped AdminClient never completes its futures.
    kafka = admin(layout.broker.bootstrap, {"log_level": 2}) if layout.broker is not None else None
    while True:
        for process in processes:
            if process.exit_code is not None:
                raise ScaleBenchError(
                    f"{process.name} of the {layout.name} run exited ({process.exit_code}) while starting:"
                    + process.tail()
                )
        if (
            all(process.ready() for process in processes)
            and connects(syslog_port)
            and (kafka is None or await asyncio.to_thread(_groups_settled, kafka, layout))
        ):
            return
        if time.monotonic() > deadline:
            raise ScaleBenchError(
                f"the {layout.name} run was not ready within {START_SECONDS:.0f}s (processes up, syslog port "
                f"{syslog_port} listening, {layout.workers} members owning every partition of both groups):"
                + "".join(process.tail() for process in processes)
            )
        await asyncio.sleep(0.5)


def _groups_settled(kafka: AdminClient, layout: _Layout) -> bool:
    """Whether the detect and correlate groups are stable, with ``layout.workers`` members owning every partition."""
    topics = layout.topics
    read = {topics.detect_group: topics.events, topics.correlate_group: topics.correlation}
    for group, future in kafka.describe_consumer_groups(list(read), request_timeout=10).items():
        try:
            description = future.result(timeout=15)
        except KafkaException:
            return False  # not created yet, or its coordinator still loading: asked again shortly
        owned = {
            tp.partition
            for member in description.members
            if member.assignment is not None
            for tp in member.assignment.topic_partitions
            if tp.topic == read[group]
        }
        if (
            description.state != ConsumerGroupState.STABLE
            or len(description.members) != layout.workers
            or owned != set(range(layout.partitions))
        ):
            return False
    return True


async def _wait_idle(processes: list[_Process]) -> None:
    """Until the processes are done with their start-up work (rule compilation, the catalog, templates).

    Such work would otherwise be counted as the first events' CPU. Bounded: a process that
    never goes idle is measured anyway, with that work in its numbers.
    """
    deadline = time.monotonic() + IDLE_SECONDS
    before, at = sum(process.cpu_seconds() for process in processes), time.perf_counter()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        for process in processes:
            if process.exit_code is not None:
                raise ScaleBenchError(f"{process.name} exited ({process.exit_code}) after starting:" + process.tail())
        now, now_at = sum(process.cpu_seconds() for process in processes), time.perf_counter()
        if now - before < IDLE_CPU_SHARE * len(processes) * (now_at - at):
            return
        before, at = now, now_at


async def _measure(
    processes: list[_Process],
    *,
    syslog_port: int,
    client: AsyncElasticsearch,
    names: IndexNames,
    lines: list[bytes],
    layout: _Layout,
) -> _Measurement:
    """Send ``lines``, and poll until they are all stored (and committed by both groups); time and CPU of it."""
    expected = len(lines)
    broker_pid = layout.broker.pid() if layout.broker is not None else None
    cpu_before = [process.cpu_seconds() for process in processes]
    kafka_before = process_cpu_seconds(broker_pid) if broker_pid is not None else None
    machine_before = _machine_busy_seconds()
    _, connection = await asyncio.open_connection("127.0.0.1", syslog_port)
    first_byte_at = time.perf_counter()
    sending = asyncio.create_task(_send(connection, b"".join(lines)))
    samples: list[LagSample] = []
    partition_events: list[int] = []
    progress, progress_at = (-1, -1), time.monotonic()
    try:
        while True:
            tick = time.perf_counter()
            (count, counted_at), reading = await asyncio.gather(
                _refreshed_count(client, names.events_pattern),
                asyncio.to_thread(_read_lag, layout, first_byte_at) if layout.broker is not None else _no_lag(),
            )
            lag_done = True
            if reading is not None:
                sample, partition_events = reading
                samples.append(sample)
                lag_done = sample.detect == sample.correlate == 0
                counted_at = max(counted_at, first_byte_at + sample.at)
            if count >= expected and lag_done and sending.done():
                await sending  # its error, had it had one
                finished_at = counted_at
                break
            if sending.done() and sending.exception() is not None:
                raise ScaleBenchError(f"sending to the {layout.name} run failed: {sending.exception()}")
            exited = [process for process in processes if process.exit_code is not None]
            if exited:
                raise ScaleBenchError(
                    f"{exited[0].name} of the {layout.name} run exited ({exited[0].exit_code}) with {count:,} of "
                    f"{expected:,} events stored:" + exited[0].tail()
                )
            # Progress is more stored, or less lag; the lag's sum over both groups stands for the latter.
            state = (count, -(samples[-1].detect + samples[-1].correlate) if samples else 0)
            if state != progress or not sending.done():
                progress, progress_at = state, time.monotonic()
            elif time.monotonic() - progress_at > STALL_SECONDS:
                raise ScaleBenchError(
                    f"the {layout.name} run stored {count:,} of {expected:,} events"
                    + (f" (lag {samples[-1].detect:,} detect, {samples[-1].correlate:,} correlate)" if samples else "")
                    + f", then made no progress for {STALL_SECONDS:.0f}s:"
                    + "".join(process.tail() for process in processes)
                )
            await asyncio.sleep(max(0.0, tick + SAMPLE_SECONDS - time.perf_counter()))
    finally:
        if not sending.done():
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    cpu = [process.cpu_seconds() - before for process, before in zip(processes, cpu_before, strict=True)]
    kafka_cpu = (
        process_cpu_seconds(broker_pid) - kafka_before if broker_pid is not None and kafka_before is not None else None
    )
    return _Measurement(
        seconds=finished_at - first_byte_at,
        collector_cpu=cpu[0],
        detect_cpu=sum(cpu[1:]),
        kafka_cpu=kafka_cpu,
        machine_cpu=_machine_busy_seconds() - machine_before,
        lag=samples,
        partition_events=partition_events,
    )


async def _send(connection: asyncio.StreamWriter, payload: bytes) -> None:
    """All of ``payload`` over the connection, as fast as the collector takes it, then close it."""
    try:
        connection.write(payload)
        await connection.drain()
        connection.write_eof()
    finally:
        connection.close()
        await connection.wait_closed()


async def _no_lag() -> None:
    return None


def _read_lag(layout: _Layout, since: float) -> tuple[LagSample, list[int]]:
    """Both groups' total lag, ``at`` seconds after ``since`` (a time.perf_counter()), and each partition's events."""
    assert layout.broker is not None
    topics = layout.topics
    try:
        rows = group_lag(layout.broker.bootstrap, topics, timeout=10.0)
    except BrokerError as exc:
        raise ScaleBenchError(f"cannot read the consumer groups' lag during the {layout.name} run: {exc}") from exc
    at = time.perf_counter() - since  # once read: the lag was this small by then at the latest
    totals = total_lag(rows)  # both topics have rows: the processes created them before they said they run
    events = [row.end - row.start for row in sorted(rows, key=lambda row: row.partition) if row.topic == topics.events]
    return LagSample(at, totals.get(topics.detect_group, 0), totals.get(topics.correlate_group, 0)), events


# -- Elasticsearch and Kafka -------------------------------------------------------------------


async def _refreshed_count(client: AsyncElasticsearch, target: str) -> tuple[int, float]:
    """The documents in ``target`` after a refresh, and the time.perf_counter() just after that refresh."""

    async def count() -> tuple[int, float]:
        # A refresh makes everything indexed so far countable, instead of waiting for refresh_interval.
        await client.indices.refresh(index=target, allow_no_indices=True, ignore_unavailable=True)
        refreshed_at = time.perf_counter()
        response = await client.count(index=target, allow_no_indices=True, ignore_unavailable=True)
        return int(response["count"]), refreshed_at

    return await read_when_ready(client, count)


def _delete_topics(bootstrap: str, topics: Topics) -> None:
    """Delete the configuration's topics and consumer groups; what cannot be deleted is logged."""
    kafka = admin(bootstrap, {"log_level": 2})  # held until its futures are done
    requests = {
        "topics": kafka.delete_topics([topics.events, topics.correlation], operation_timeout=30, request_timeout=30),
        "groups": kafka.delete_consumer_groups([topics.detect_group, topics.correlate_group], request_timeout=30),
    }
    for kind, futures in requests.items():
        for name, future in futures.items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                log.warning(
                    "Could not delete the benchmark's Kafka data.", kind=kind, name=name, error=str(exc.args[0])
                )


# -- helpers -----------------------------------------------------------------------------------


def _machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent on anything but idling and waiting for I/O, since boot."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()  # "cpu user nice system idle iowait irq softirq steal guest guest_nice"
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
