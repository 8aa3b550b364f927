"""Settings of each source type, selected by ``type:`` in the ``sources:`` section.

Kept apart from the sources themselves so that secmon's configuration model can include them
without importing the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("format", check_fields=False)
    @classmethod
    def _known_format(cls, value: str) -> str:
        from secmon.collect.transforms.normalize import TRANSFORMS

        if value != "auto" and value not in TRANSFORMS:
            raise ValueError(f"unknown format {value!r}: expected auto or one of {', '.join(sorted(TRANSFORMS))}")
        return value

    format: str = Field("auto", description="How to parse each message: auto, syslog, apache_access, ... or raw.")
    agency: str | None = Field(None, description="organization.id stamped on every event of this source.")
    agency_name: str | None = Field(None, description="organization.name stamped on every event of this source.")
    dataset: str | None = Field(None, description="Force event.dataset (else the parser decides).")


class _DrainedSourceSettings(_SourceSettings):
    """A source that, on stop, first delivers what is already on its way to it."""

    stop_grace: float = Field(
        3.0,
        ge=0,
        description="Seconds a stop gives this source to deliver what already reached it: TCP and TLS "
        "connections are read until their sender closes them (those still open then are closed), files are read "
        "to their current end (a pending multi-line message included), an EVTX file being read is finished, "
        "queued packets are decoded. What the buffer then holds is sent to Elasticsearch.",
    )


class SyslogSourceSettings(_DrainedSourceSettings):
    """Syslog over UDP, TCP (RFC 6587 octet counting or newline framing) or TLS."""

    type: Literal["syslog"] = "syslog"
    mode: Literal["udp", "tcp", "tls"] = Field("udp", description="Transport. UDP cannot push back: drops are counted.")
    address: str = Field("0.0.0.0:514", pattern=r"^.+:\d+$", description="host:port to listen on (port 0: any free).")
    format: str = Field("syslog", description="How to parse each message.")
    max_message_bytes: int = Field(
        1 << 20, ge=1024, description="Longer messages are cut to this size and tagged _secmon_truncated."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) for mode tls.")
    tls_key: Path | None = Field(None, description="PEM private key for mode tls.")
    tls_client_ca: Path | None = Field(None, description="Require client certificates signed by this CA (mode tls).")


class FileSourceSettings(_DrainedSourceSettings):
    """Files followed as they grow: globs, rotation by rename or copytruncate, checkpoints."""

    type: Literal["file"] = "file"
    include: list[str] = Field(..., min_length=1, description="Glob patterns of the files to read.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of files to leave alone.")
    start_at: Literal["beginning", "end"] = Field(
        "end",
        description="Where to start in a file seen for the first time at start-up. Files that appear "
        "later (a rotation's new file) are always read from the beginning.",
    )
    multiline_start: str | None = Field(
        None,
        description="Regex matching the first line of a multi-line message (e.g. '^\\S' or '^\\d{4}-'); "
        "other lines are joined to the message before them.",
    )
    multiline_timeout: float = Field(1.0, gt=0, description="Seconds before a multi-line message is sent anyway.")
    poll_interval: float = Field(0.25, gt=0, description="Seconds between looks for new data and new files.")
    max_line_bytes: int = Field(1 << 20, ge=1024, description="Longer lines are cut and tagged _secmon_truncated.")


class EvtxSourceSettings(_DrainedSourceSettings):
    """Windows event log files (.evtx) dropped in a folder: every record once, including records added later.

    A file is read once it has stopped changing for one poll (so a copy in progress is not read
    half-written); each file's checkpoint is the last record id stored.
    """

    type: Literal["evtx"] = "evtx"
    include: list[str] = Field(..., min_length=1, description="Glob patterns of the .evtx files to read.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of files to leave alone.")
    format: str = Field("evtx", description="How to parse each record (evtx: as secmon import evtx does).")
    poll_interval: float = Field(1.0, gt=0, description="Seconds between looks for new files and new records.")


class HttpSourceSettings(_SourceSettings):
    """HTTP ingest: NDJSON on /ingest, and Elasticsearch's _bulk API for Beats, Vector and Fluent Bit.

    Senders authenticate with a secmon API key of role agency (their events are stamped with the
    key's agency) or admin. ``agency`` here applies only to events sent with an admin key that
    name no organization.id.
    """

    type: Literal["http"] = "http"
    address: str = Field("0.0.0.0:8088", pattern=r"^.+:\d+$", description="host:port to listen on (port 0: any free).")
    format: str = Field(
        "json", description="How to parse each line of POST /ingest; POST /ingest/<format> overrides it per request."
    )
    max_body_bytes: int = Field(
        10 << 20,
        ge=1024,
        description="Largest request body, counted before and after gunzip (so a gzip bomb is refused early): "
        "larger is answered 413.",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS instead of HTTP.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    rate_limit: float | None = Field(
        None,
        gt=0,
        description="Events per second each API key may send on average (null: no limit); "
        "more is answered 429 with Retry-After, which Beats, Vector and Fluent Bit honour.",
    )
    rate_burst: float = Field(10.0, gt=0, description="Seconds of rate_limit a key may send at once.")


class CaptureSourceSettings(_DrainedSourceSettings):
    """Live packet capture on one interface (AF_PACKET): flow, DNS, HTTP, TLS, ICMP and ARP events.

    Needs root or CAP_NET_RAW; a BPF filter needs libpcap (Debian: libpcap0.8) to compile it.
    """

    type: Literal["capture"] = "capture"
    interface: str = Field(..., description="Interface to capture on, e.g. eth0.")
    bpf_filter: str | None = Field(None, description="Capture only what this BPF expression selects ('not port 22').")
    snaplen: int = Field(65535, ge=64, le=262144, description="Bytes kept of each packet.")
    promiscuous: bool = Field(True, description="Capture traffic not addressed to this host too.")
    idle_timeout: float = Field(60.0, gt=0, description="Seconds without a packet after which a flow is reported.")
    active_timeout: float = Field(
        1800.0, gt=0, description="Seconds after which a long flow is reported, then restarted."
    )
    max_flows: int = Field(
        500_000, ge=1000, description="Flows tracked at most; past it the oldest is reported early (a flood's memory)."
    )
    flush_interval: float = Field(1.0, gt=0, description="Seconds between hand-overs of packets to the pipeline.")
    max_queue_packets: int = Field(
        200_000, ge=1000, description="Packets waiting for the pipeline at most; more are dropped and counted."
    )


SourceSettings = Annotated[
    SyslogSourceSettings | FileSourceSettings | EvtxSourceSettings | HttpSourceSettings | CaptureSourceSettings,
    Field(discriminator="type"),
]
