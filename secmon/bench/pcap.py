"""``secmon bench pcap``: packets/s and events/s of secmon's packet decoder, beside Suricata.

Both read the same capture file on one core and log the same kinds of records: connections
(flows), DNS messages, HTTP requests and TLS handshakes.

* secmon runs in this process: :func:`~secmon.collect.transforms.packets.read_capture` and
  :class:`~secmon.collect.transforms.packets.PacketProcessor` over the whole file, then ``flush()``
  (the flows still open at the end become events, as Suricata logs them at shut-down). Timed
  twice: reading and processing (what a peer reading the file does), and processing alone over
  frames read beforehand. Each is the median of ``repeat`` runs; interpreter start-up is not in it.
* Suricata runs as a process, ``suricata -r FILE --runmode single -k none -S /dev/null`` with a
  configuration of its own (:func:`suricata_config`): one packet thread, no rules, checksums not
  checked, and eve.json with flow, dns, http and tls records. Its wall time includes start-up and
  shut-down, so it is also run on a one-packet capture: that run's wall time is taken as
  Suricata's fixed cost and subtracted for a second packets/s figure.

Larger inputs than the datasets' small captures come from :func:`make_bench_capture`.
"""

from __future__ import annotations

import gc
import json
import resource
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from secmon.collect.transforms.packets import CaptureError, PacketProcessor, read_capture
from secmon.errors import SecmonError

APT_INSTALL = "apt-get install -y -t bookworm-backports suricata"
# Debian 12 ships Suricata only in bookworm-backports; later releases have it in main.
APT_NOTE = "(on Debian 12 add the bookworm-backports suite first; later releases: apt-get install -y suricata)"
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "pcap"
SOURCE_FOLDERS = ("dns", "http", "tls", "flow")
SURICATA_SECONDS = 1800.0
LINKTYPE_ETHERNET = 1
START_TIME = 1_700_000_000.0
MAX_GAP = 1.0  # seconds: longer pauses inside a source capture are shortened to this
REPLAY_GAP = 0.001  # seconds between the end of one replayed capture and the start of the next
EVENT_TYPES = ("flow", "dns", "http", "tls")


class PcapBenchError(SecmonError):
    """A benchmark input could not be built or a run failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class SecmonPcapResult:
    packets: int
    events: Counter[str]  # by event.dataset, e.g. network.flow
    read_seconds: float  # median: reading the file and processing every frame
    process_seconds: float  # median: processing frames already in memory

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.read_seconds if self.read_seconds else 0.0

    @property
    def events_per_second(self) -> float:
        return self.total_events / self.read_seconds if self.read_seconds else 0.0

    @property
    def process_packets_per_second(self) -> float:
        return self.packets / self.process_seconds if self.process_seconds else 0.0

    @property
    def process_events_per_second(self) -> float:
        return self.total_events / self.process_seconds if self.process_seconds else 0.0


@dataclass(frozen=True, slots=True)
class SuricataPcapResult:
    version: str
    packets: int  # as Suricata counted them (decoder.pkts)
    events: Counter[str]  # eve.json records by event_type, stats records left out
    seconds: float  # median wall time of the process, start-up and shut-down included
    cpu_seconds: float  # median user + system CPU time of the process (more than seconds: more than one core)
    startup_seconds: float | None  # median wall time on a one-packet capture
    command: str

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds else 0.0

    @property
    def events_per_second(self) -> float:
        return self.total_events / self.seconds if self.seconds else 0.0

    @property
    def working_seconds(self) -> float | None:
        """Wall time less the one-packet run's: the part that grows with the capture."""
        if self.startup_seconds is None or self.seconds <= self.startup_seconds:
            return None
        return self.seconds - self.startup_seconds

    @property
    def working_packets_per_second(self) -> float | None:
        working = self.working_seconds
        return self.packets / working if working else None


@dataclass(frozen=True, slots=True)
class PcapBenchResult:
    path: Path
    repeat: int
    secmon: SecmonPcapResult
    suricata: SuricataPcapResult | None
    suricata_problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """secmon packets/s (reading + processing) / Suricata packets/s (whole process)."""
        if self.suricata is None or not self.suricata.packets_per_second:
            return None
        return self.secmon.packets_per_second / self.suricata.packets_per_second

    @property
    def working_ratio(self) -> float | None:
        """secmon packets/s (reading + processing) / Suricata packets/s less its start-up."""
        rate = self.suricata.working_packets_per_second if self.suricata is not None else None
        return self.secmon.packets_per_second / rate if rate else None


def bench_pcap(path: Path, repeat: int) -> PcapBenchResult:
    """Measure secmon's decoder on ``path`` in this process, then Suricata on the same file."""
    ours = bench_secmon(path, repeat)
    problem = suricata_missing()
    theirs: SuricataPcapResult | None = None
    if problem is None:
        try:
            theirs = bench_suricata(path, repeat)
        except PcapBenchError as error:
            problem = str(error)
    result = PcapBenchResult(path, repeat, ours, theirs, problem)
    if theirs is not None and theirs.packets != ours.packets:
        result.notes.append(f"packet counts differ: secmon read {ours.packets:,}, Suricata counted {theirs.packets:,}")
    return result


def bench_secmon(path: Path, repeat: int) -> SecmonPcapResult:
    """secmon's reader and decoder over ``path``: ``repeat`` timed passes of each kind, medians."""
    frames = list(read_capture(path))
    events = Counter(_dataset(e) for e in _process(frames))
    read_timings: list[float] = []
    process_timings: list[float] = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        count = sum(1 for _ in _process(read_capture(path)))
        read_timings.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        count = sum(1 for _ in _process(frames))
        process_timings.append(time.perf_counter() - started)
        if count != sum(events.values()):
            raise PcapBenchError(f"secmon gave {count:,} events on one pass and {sum(events.values()):,} on another")
    return SecmonPcapResult(len(frames), events, statistics.median(read_timings), statistics.median(process_timings))


def _process(frames: Iterable[tuple[float, bytes, int]]) -> Iterator[object]:
    processor = PacketProcessor()
    process = processor.process
    for ts, data, linktype in frames:
        yield from process(ts, data, linktype)
    yield from processor.flush()


def _dataset(event: object) -> str:
    meta = event.get("event") if isinstance(event, dict) else None
    dataset = meta.get("dataset") if isinstance(meta, dict) else None
    return dataset if isinstance(dataset, str) else "other"


# --- Suricata -------------------------------------------------------------------------------


def suricata_path() -> str | None:
    return shutil.which("suricata") or shutil.which("suricata", path="/usr/bin:/usr/sbin:/sbin")


def suricata_missing() -> str | None:
    """Why Suricata cannot be run here, or None when it can."""
    if suricata_path() is None:
        return f"suricata is not installed; install it with: {APT_INSTALL} {APT_NOTE}"
    return None


def suricata_config(log_dir: Path) -> str:
    """A configuration for protocol logging only: eve.json with flow, dns, http and tls records.

    Everything not named keeps Suricata's built-in default; stats go to eve.json once, at the end,
    for the packet count.
    """
    return f"""%YAML 1.1
---
default-log-dir: {log_dir}
stats:
  enabled: yes
  interval: 3600
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - flow
        - dns
        - http
        - tls
        - stats:
            totals: yes
            threads: no
            deltas: no
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: no
    - file:
        enabled: yes
        level: info
        filename: suricata.log
app-layer:
  protocols:
    tls:
      enabled: yes
      detection-ports:
        dp: 443
    http:
      enabled: yes
    dns:
      tcp:
        enabled: yes
        detection-ports:
          dp: 53
      udp:
        enabled: yes
        detection-ports:
          dp: 53
threading:
  set-cpu-affinity: no
"""


def suricata_command(path: Path, workdir: Path) -> list[str]:
    return [
        suricata_path() or "suricata",
        "-c",
        str(workdir / "suricata.yaml"),
        "-r",
        str(path),
        "-l",
        str(workdir),
        "--runmode",
        "single",
        "-k",
        "none",
        "-S",
        "/dev/null",
    ]


def run_suricata(path: Path, workdir: Path) -> tuple[float, float, int, Counter[str]]:
    """One Suricata run over ``path``: wall and CPU seconds, packets it decoded, eve records by type."""
    for old in workdir.glob("*"):
        old.unlink()
    (workdir / "suricata.yaml").write_text(suricata_config(workdir))
    command = suricata_command(path, workdir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SURICATA_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PcapBenchError(f"suricata did not finish {path} within {SURICATA_SECONDS:.0f}s") from None
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        log_text = (workdir / "suricata.log").read_text() if (workdir / "suricata.log").exists() else ""
        tail = (done.stderr or log_text).strip().splitlines()[-5:]
        raise PcapBenchError(f"suricata exited with {done.returncode}: {' | '.join(tail)}")
    packets, events = read_eve(workdir / "eve.json")
    return seconds, cpu, packets, events


def read_eve(eve: Path) -> tuple[int, Counter[str]]:
    """Packets from the last stats record and the other records counted by event_type."""
    if not eve.exists():
        raise PcapBenchError(f"suricata wrote no {eve}")
    events: Counter[str] = Counter()
    packets = -1
    with eve.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            kind = record.get("event_type", "other")
            if kind == "stats":
                packets = int(record["stats"]["decoder"]["pkts"])
            else:
                events[kind] += 1
    if packets < 0:
        raise PcapBenchError(f"suricata wrote no stats record to {eve}")
    return packets, events


def suricata_version() -> str:
    done = subprocess.run([suricata_path() or "suricata", "-V"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("This is Suricata version ").strip() or "unknown"


def bench_suricata(path: Path, repeat: int) -> SuricataPcapResult:
    """Suricata on ``path`` ``repeat`` times after one warm-up run, and on a one-packet capture."""
    with tempfile.TemporaryDirectory(prefix="secmon-bench-suricata-") as tmp:
        workdir = Path(tmp)
        runs = workdir / "run"
        runs.mkdir()
        one = _first_packet_capture(path, workdir / "one.pcap")
        run_suricata(path, runs)  # warm-up: page cache, rule-less engine set-up paths
        timings: list[float] = []
        cpu_timings: list[float] = []
        packets, events = 0, Counter[str]()
        for _ in range(repeat):
            seconds, cpu, packets, events = run_suricata(path, runs)
            timings.append(seconds)
            cpu_timings.append(cpu)
        startup: float | None = None
        if one is not None:
            startup = statistics.median(run_suricata(one, runs)[0] for _ in range(max(repeat, 3)))
        command = " ".join(suricata_command(path, Path("TMPDIR")))
    return SuricataPcapResult(
        suricata_version(),
        packets,
        events,
        statistics.median(timings),
        statistics.median(cpu_timings),
        startup,
        command,
    )


def _first_packet_capture(path: Path, out: Path) -> Path | None:
    """A pcap of ``path``'s first frame: Suricata's start-up and shut-down with almost no work."""
    from scapy.utils import RawPcapWriter

    first = next(iter(read_capture(path)), None)
    if first is None:
        return None
    ts, data, linktype = first
    writer = RawPcapWriter(str(out), linktype=linktype, sync=False)
    with writer:
        writer.write_header(None)
        writer.write_packet(data, sec=int(ts), usec=round((ts % 1) * 1e6))
    return out


# --- Larger captures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchCapture:
    """How :func:`make_bench_capture` built a capture, for the report."""

    path: Path
    packets: int
    sources: list[Path]
    replays: int
    skipped: list[str]

    def describe(self) -> str:
        return (
            f"{self.packets:,} Ethernet frames from {len(self.sources)} captures of the datasets' "
            f"{', '.join(SOURCE_FOLDERS)} folders, replayed {self.replays:,} times in turn; each replay k "
            "has bits of k XOR-ed into the 2nd and 3rd octet of every IPv4 address (bytes 4-5 of IPv6 ones), "
            "so its flows are distinct; IP, TCP, UDP and ICMPv6 checksums adjusted for the new addresses "
            "(RFC 1624), so a frame valid before is valid after; timestamps continue one replay after the "
            f"other, pauses over {MAX_GAP:g}s shortened to {MAX_GAP:g}s; written with scapy's RawPcapWriter"
        )


def source_captures(root: Path = DATASETS, folders: Sequence[str] = SOURCE_FOLDERS) -> list[Path]:
    return sorted(
        p for folder in folders for p in (root / folder).rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap")
    )


def make_bench_capture(out: Path, packets: int, sources: Sequence[Path] | None = None) -> Path:
    """A pcap of exactly ``packets`` frames built by replaying and re-addressing the datasets' captures."""
    return build_bench_capture(out, packets, sources).path


def build_bench_capture(out: Path, packets: int, sources: Sequence[Path] | None = None) -> BenchCapture:
    """:func:`make_bench_capture`, returning how the capture was built."""
    from scapy.utils import RawPcapWriter

    inputs = list(sources) if sources is not None else source_captures()
    captures: list[tuple[Path, list[tuple[float, bytes]]]] = []
    skipped: list[str] = []
    for path in inputs:
        try:
            frames = list(read_capture(path))
        except CaptureError as error:
            skipped.append(f"{path.name}: {error}")
            continue
        if not frames or any(linktype != LINKTYPE_ETHERNET for _, _, linktype in frames):
            skipped.append(f"{path.name}: not Ethernet")
            continue
        captures.append((path, [(ts, data) for ts, data, _ in frames]))
    if not captures:
        raise PcapBenchError(f"no Ethernet capture to replay among {len(inputs)} files")
    written = 0
    replay = 0
    clock = START_TIME
    writer = RawPcapWriter(str(out), linktype=LINKTYPE_ETHERNET, sync=False)
    with writer:
        writer.write_header(None)  # write_packet alone leaves the file without its header
        while written < packets:
            _, replayed = captures[replay % len(captures)]
            key = (replay // len(captures) + 1) & 0xFFFF
            previous = replayed[0][0]
            for ts, data in replayed:
                if written == packets:
                    break
                clock += min(max(ts - previous, 0.0), MAX_GAP)
                previous = ts
                seconds = int(clock)
                writer.write_packet(readdress(data, key), sec=seconds, usec=int((clock - seconds) * 1e6))
                written += 1
            clock += REPLAY_GAP
            replay += 1
    return BenchCapture(out, written, [path for path, _ in captures], replay, skipped)


_IPV4 = 0x0800
_IPV6 = 0x86DD
_VLAN = (0x8100, 0x88A8)
_L4_CHECKSUM = {6: 16, 17: 6}  # TCP and UDP: where the checksum is in their header
_ICMPV6 = 58


def readdress(frame: bytes, key: int) -> bytes:
    """``frame`` with ``key`` XOR-ed into its IP addresses and the checksums they enter adjusted."""
    offset = 12
    if len(frame) < offset + 2:
        return frame
    ethertype = int.from_bytes(frame[offset : offset + 2])
    while ethertype in _VLAN and len(frame) >= offset + 6:
        offset += 4
        ethertype = int.from_bytes(frame[offset : offset + 2])
    ip = offset + 2
    out = bytearray(frame)
    mask = key.to_bytes(2)
    if ethertype == _IPV4 and len(frame) >= ip + 20:
        ihl = (frame[ip] & 0x0F) * 4
        addresses = slice(ip + 12, ip + 20)
        old = bytes(out[addresses])
        for start in (ip + 13, ip + 17):
            out[start] ^= mask[0]
            out[start + 1] ^= mask[1]
        new = bytes(out[addresses])
        _adjust(out, ip + 10, old, new)
        fragment = int.from_bytes(frame[ip + 6 : ip + 8]) & 0x1FFF
        l4 = ip + ihl
        where = _L4_CHECKSUM.get(frame[ip + 9])
        if not fragment and where is not None:
            _adjust(out, l4 + where, old, new, udp=frame[ip + 9] == 17)
    elif ethertype == _IPV6 and len(frame) >= ip + 40:
        addresses = slice(ip + 8, ip + 40)
        old = bytes(out[addresses])
        for start in (ip + 12, ip + 28):
            out[start] ^= mask[0]
            out[start + 1] ^= mask[1]
        new = bytes(out[addresses])
        l4 = ip + 40
        where = 2 if frame[ip + 6] == _ICMPV6 else _L4_CHECKSUM.get(frame[ip + 6])
        if where is not None:
            _adjust(out, l4 + where, old, new)
    return bytes(out)


def _adjust(out: bytearray, at: int, old: bytes, new: bytes, *, udp: bool = False) -> None:
    """RFC 1624's HC' = ~(~HC + ~m + m') for the 16-bit words of ``old`` replaced by ``new``."""
    if len(out) < at + 2:
        return  # the header is cut short in the capture: nothing to adjust
    checksum = int.from_bytes(out[at : at + 2])
    if udp and checksum == 0:
        return  # UDP over IPv4 without a checksum
    words = len(old) // 2
    total = (~checksum & 0xFFFF) + sum(~w & 0xFFFF for w in struct.unpack(f"!{words}H", old))
    total += sum(struct.unpack(f"!{words}H", new))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    checksum = ~total & 0xFFFF
    if udp and checksum == 0:
        checksum = 0xFFFF
    out[at : at + 2] = checksum.to_bytes(2)
