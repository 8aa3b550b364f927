"""Two ``secmon up`` processes sharing one Elasticsearch share the rule catalog: a rule uploaded
through one's API fires on the events of the other, a rule disabled through one stops firing on
the other, and the rules an older secmon kept in ``state_dir`` are imported at start."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from elasticsearch import AsyncElasticsearch

from secmon.auth import KeyStore, Role
from secmon.config import ElasticsearchSettings
from secmon.store import IndexNames
from tests.support.net import connects, free_port
from tests.support.rules import sshd_failure_rule
from tests.support.wait import until

YAML = {"Content-Type": "application/yaml"}


@dataclass(slots=True)
class Instance:
    """A running ``secmon up``: its syslog (TCP) and API ports, its state_dir and its output."""

    name: str
    syslog_port: int
    api_port: int
    state_dir: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def send(self, host: str, user: str) -> None:
        line = (
            f"<38>Dec 10 06:55:10 {host} sshd[24200]: Failed password for invalid user {user} "
            "from 203.0.113.9 port 38926 ssh2\n"
        )
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sender:
            sender.sendall(line.encode())


def configure(tmp_path: Path, name: str, url: str, names: IndexNames, rules: Path) -> tuple[Instance, Path]:
    instance = Instance(name, free_port(), free_port(), tmp_path / f"state-{name}", tmp_path / f"up-{name}.log")
    config = tmp_path / f"secmon-{name}.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "elasticsearch": {"url": url, "index_prefix": names.prefix},
                "state_dir": str(instance.state_dir),
                "metrics": {"address": None},
                "api": {"address": f"127.0.0.1:{instance.api_port}"},
                "detection": {"rules": [str(rules)], "reload_interval": 0.5, "group_window": "0s"},
                "sources": {"edge": {"type": "syslog", "mode": "tcp", "address": f"127.0.0.1:{instance.syslog_port}"}},
            }
        )
    )
    return instance, config


@contextlib.asynccontextmanager
async def running(instance: Instance, config: Path) -> AsyncIterator[Instance]:
    with instance.log_path.open("w") as log_file:  # a file, not a pipe nobody reads
        instance.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "secmon", "--config", str(config), "up", stdout=log_file, stderr=subprocess.STDOUT
        )
    process = instance.process
    try:
        await until(
            lambda: asyncio.to_thread(
                lambda: process.returncode is None and connects(instance.syslog_port) and connects(instance.api_port)
            ),
            lambda: f"secmon up ({instance.name}) to open its ports; its output:\n{instance.log_path.read_text()}",
            timeout=90,
            interval=0.5,
        )
        yield instance
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def alerts_of(es: AsyncElasticsearch, names: IndexNames, rule_id: str, host: str) -> list[dict[str, Any]]:
    await es.indices.refresh(index=names.alerts)
    response = await es.search(
        index=names.alerts,
        query={"bool": {"filter": [{"term": {"rule.id": rule_id}}, {"term": {"host.name": host}}]}},
        ignore_unavailable=True,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


async def test_a_rule_changed_through_one_instance_reaches_the_other(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    url = es_settings.url or f"http://{es_settings.local.host}:{es_settings.local.port}"
    names = IndexNames(f"{es_settings.index_prefix}-shared{secrets.token_hex(3)}")  # a catalog of this test's own
    rules = tmp_path / "configured"
    rules.mkdir()
    user = f"shared{secrets.token_hex(4)}"
    shared_id, control_id, old_id = (f"5a4e0000-0000-4000-8000-{secrets.token_hex(6)}" for _ in range(3))
    first, first_config = configure(tmp_path, "a", url, names, rules)
    second, second_config = configure(tmp_path, "b", url, names, rules)
    # Left by an older secmon in the second instance's state_dir: imported into the index at start.
    (second.state_dir / "rules").mkdir(parents=True)
    (second.state_dir / "rules" / f"{old_id}.yml").write_text(sshd_failure_rule(old_id, "nobody-at-all", "Old rule"))

    keys = KeyStore(es, names)
    await keys.ensure_index()
    _, secret = await keys.create(Role.RULE_AUTHOR, name="shared.author")
    auth = {"Authorization": f"Bearer {secret}"}

    async with (
        running(first, first_config),
        running(second, second_config),
        httpx.AsyncClient(base_url=first.api_url, headers=auth) as api_a,
        httpx.AsyncClient(base_url=second.api_url, headers=auth) as api_b,
    ):
        # The migrated rule is in the index, so the other instance lists it too.
        stored = await es.get(index=names.rules, id=f"rule:{old_id}")
        assert stored["_source"]["yaml"] == sshd_failure_rule(old_id, "nobody-at-all", "Old rule")
        listed = await until(
                lambda: api_a.get(f"/rules/{old_id}"), "the migrated rule on the first instance",
                done=lambda r: r.status_code == 200,
            )  # fmt: skip
        assert listed.json()["origin"] == "uploaded"

        for rule_id, title in ((shared_id, "Shared rule"), (control_id, "Control rule")):
            created = await api_a.post("/rules", content=sshd_failure_rule(rule_id, user, title), headers=YAML)
            assert created.status_code == 201, created.text

        # Through the first instance's API, fired by the second instance's engine.
        second.send("web-b1", user)
        [alert] = await until(
            lambda: alerts_of(es, names, shared_id, "web-b1"),
            lambda: f"the second instance's alert; its output:\n{second.log_path.read_text()}",
        )
        assert alert["rule"]["title"] == "Shared rule"

        disabled = await api_b.put(f"/rules/{shared_id}/enabled", json={"enabled": False})
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False, disabled.text
        await until(
                lambda: api_a.get(f"/rules/{shared_id}"), "the first instance to list the rule disabled",
                done=lambda r: r.status_code == 200 and r.json()["enabled"] is False,
            )  # fmt: skip
        await until(
            lambda: "Rules reloaded." in first.log_path.read_text().split("Rule catalog mirrored.")[-1],
            "the first instance to reload the mirrored catalog",
        )

        first.send("web-a1", user)
        # The control rule matches the same event: once its alert is stored, the disabled rule's would be too.
        await until(
            lambda: alerts_of(es, names, control_id, "web-a1"), "the control rule's alert on the first instance"
        )
        assert await alerts_of(es, names, shared_id, "web-a1") == []
