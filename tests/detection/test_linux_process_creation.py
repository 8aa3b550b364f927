"""SigmaHQ's Linux process_creation rules over auditd: a program's SYSCALL and EXECVE lines are one process start."""

from __future__ import annotations

import collections
import secrets
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from secmon.collect.topology import SourceContext
from secmon.collect.transforms.join_audit_exec import MAX_WAITING, ExecJoin
from secmon.collect.transforms.parse_auditd import parse_auditd
from secmon.config import DetectionSettings
from secmon.detection.detector import Detector, load_detector
from secmon.detection.stage import DetectionStage
from secmon.events import Record
from secmon.offline import hunt
from secmon.store import IndexNames
from tests.support.pipeline import running_pipeline, search_all

RULES = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "datasets"
    / "sigma"
    / "rules"
    / "linux"
    / "process_creation"
)


def execution(serial: int, exe: str, *args: str, pid: int = 4242) -> list[str]:
    """The audit lines of one program start as auditd writes them (SYSCALL, EXECVE, CWD, PROCTITLE)."""
    stamp = f"msg=audit(1764040000.{serial % 1000:03d}:{serial})"
    quoted = " ".join(f'a{n}="{arg}"' for n, arg in enumerate(args))
    return [
        f"type=SYSCALL {stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=5600 a1=5601 a2=5602 a3=0 "
        f'items=2 ppid=4000 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 tty=pts1 ses=4 comm="{exe[-15:]}" '
        f'exe="{exe}" key="exec"',
        f"type=EXECVE {stamp}: argc={len(args)} {quoted}",
        f'type=CWD {stamp}: cwd="/home/dana"',
        f"type=PROCTITLE {stamp}: proctitle={' '.join(args).encode().hex().upper()}",
    ]


SCENARIOS = [
    (execution(101, "/usr/bin/base64", "base64", "-d", "/tmp/payload.b64"), {"Decode Base64 Encoded Text"}),
    (execution(102, "/usr/bin/rm", "rm", "-f", "/home/dana/.bash_history"), {"History File Deletion", "File Deletion"}),
    (execution(103, "/usr/bin/crontab", "crontab", "-r"), {"Remove Scheduled Cron Task/Job"}),
    (execution(104, "/usr/bin/ls", "ls", "-la", "/home/dana"), set()),
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector([RULES])


def test_every_sigmahq_linux_process_creation_rule_loads(detector: Detector) -> None:
    assert detector.ruleset.problems == []
    assert len(detector.rules) == len(list(RULES.glob("*.yml")))


@pytest.mark.parametrize(("lines", "expected"), SCENARIOS, ids=["base64", "history", "crontab", "benign"])
def test_a_program_start_logged_by_auditd_matches_its_rules(
    detector: Detector, tmp_path: Path, lines: list[str], expected: set[str]
) -> None:
    log = tmp_path / "audit.log"
    log.write_text("\n".join(lines) + "\n")
    found = collections.Counter(finding.title for finding in hunt(detector, [log]))
    assert found == collections.Counter(expected)  # once each: on the EXECVE line, which carries both


def test_an_execve_without_its_syscall_has_the_arguments_only() -> None:
    join = ExecJoin()
    syscall, execve, *_ = (parse_auditd(line) for line in execution(7, "/usr/bin/curl", "curl", "-s", "x"))
    join.join(execve, "file-a")  # arrived first: nothing to join yet
    assert execve["process"] == {
        "args": ["curl", "-s", "x"],
        "args_count": 3,
        "command_line": "curl -s x",
        "name": "curl",
    }
    other_source = parse_auditd(execution(7, "/usr/bin/curl", "curl", "-s", "x")[1])
    join.join(syscall, "file-a")
    join.join(other_source, "file-b")  # the same serial on another source is another audit event
    assert "executable" not in other_source["process"]


def test_syscalls_waiting_for_their_execve_are_bounded() -> None:
    join = ExecJoin()
    for serial in range(MAX_WAITING + 10):
        join.join(parse_auditd(execution(serial, "/usr/bin/true", "true")[0]), "file")
    oldest, newest = (parse_auditd(execution(serial, "/usr/bin/true", "true")[1]) for serial in (0, MAX_WAITING + 9))
    join.join(oldest, "file")
    join.join(newest, "file")
    assert "pid" not in oldest["process"] and newest["process"]["executable"] == "/usr/bin/true"


async def test_through_the_pipeline_the_alert_names_the_program_and_its_command_line(
    es: AsyncElasticsearch, names: IndexNames, tmp_path: Path
) -> None:
    stage = DetectionStage.load(
        DetectionSettings(rules=[RULES], group_window="0s"),  # type: ignore[call-arg]
        names.alerts,
        cache_dir=None,
        telemetry=None,
    )
    host = f"srv-{secrets.token_hex(3)}"
    lines = execution(201, "/usr/bin/base64", "base64", "--decode", "/tmp/x")
    async with running_pipeline(es, names, tmp_path, stages=[stage]) as pipeline:
        records = [Record(f"node={host} {line}") for line in lines]
        await pipeline.submit(records, SourceContext("audit-file"))
    [event] = await search_all(
        es,
        names.events("auditd"),
        {"bool": {"filter": [{"term": {"auditd.log.node": host}}, {"term": {"event.action": "execve"}}]}},
    )
    assert event["process"]["executable"] == "/usr/bin/base64"  # type: ignore[index]
    assert event["process"]["command_line"] == "base64 --decode /tmp/x"  # type: ignore[index]
    assert event["process"]["pid"] == 4242  # type: ignore[index]
    alerts = await search_all(es, names.alerts, {"term": {"host.name": host}})
    assert [a["rule"]["title"] for a in alerts] == ["Decode Base64 Encoded Text"]  # type: ignore[index]
