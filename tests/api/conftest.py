"""A running API on 127.0.0.1 over the session's Elasticsearch, keys of every role, and alerts.

Alerts are made the way the detection engine makes them (:class:`AlertBuilder` over a loaded
Sigma rule) and stored through the real writer.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from secmon.api import ApiServices, create_app
from secmon.auth import KeyStore, Role
from secmon.config import ElasticsearchSettings, Settings
from secmon.detection.alerts import AlertBuilder, Trigger
from secmon.detection.detector import load_detector
from secmon.detection.rules import Rule
from secmon.notify import Notifier
from secmon.serving import AsgiServer
from secmon.store import IndexNames

RULE = """\
title: Suspicious whoami
id: 6b1c2d3e-0000-4000-8000-000000000001
status: test
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\whoami.exe'}
  condition: selection
"""


@dataclass
class Api:
    """The API under test and what tests need around it."""

    url: str
    services: ApiServices
    names: IndexNames
    rule: Rule

    async def key(self, role: Role | str, agencies: Sequence[str] = (), name: str | None = None) -> str:
        """A new key's secret."""
        _, secret = await self.services.keys.create(
            role, agencies=agencies, name=name or f"{role}-{secrets.token_hex(3)}"
        )
        return secret

    def client(self, secret: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def store_alerts(
        self, agency: str | None, count: int = 1, *, host: str = "ws-1", user: str = "alice", rule: Rule | None = None
    ) -> list[str]:
        """``count`` alerts of agency ``agency`` (each from its own event), stored and searchable; their ids."""
        builder = AlertBuilder(self.names.alerts, window=0)
        operations: list[dict[str, Any]] = []
        ids = []
        start = datetime.now(UTC) - timedelta(minutes=5)
        for n in range(count):
            event: dict[str, Any] = {
                "@timestamp": (start + timedelta(seconds=n)).isoformat(),
                "host": {"name": host},
                "user": {"name": user},
                "process": {"executable": "C:\\Windows\\System32\\whoami.exe"},
            }
            if agency:
                event["organization"] = {"id": agency}
            event_id = f"evt-{secrets.token_hex(6)}"
            index = self.names.events("windows.sysmon")
            operations += [{"create": {"_index": index, "_id": event_id}}, event]
            for document in builder.alerts([(rule or self.rule, Trigger(event_id, index, event))]):
                operations += [{"create": {"_index": document.index, "_id": document.id}}, document.source]
                ids.append(document.id)
        response = await self.services.client.bulk(operations=operations, refresh=True)
        assert not response["errors"], response
        return ids


@pytest.fixture(scope="session")
async def api(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    rule_dir: Path = tmp_path_factory.mktemp("api-rules")
    (rule_dir / "whoami.yml").write_text(RULE)
    detector = load_detector([rule_dir])
    assert not detector.ruleset.problems, detector.ruleset.problems
    settings = Settings(elasticsearch=es_settings, state_dir=tmp_path_factory.mktemp("api-state"))  # type: ignore[call-arg]
    names = IndexNames(es_settings.index_prefix)
    keys = KeyStore(es, names)
    await keys.ensure_index()
    services = ApiServices.build(settings, es, keys)
    services.notifier = Notifier(settings.notifications, es, names.notifications)
    await services.prepare()
    server = AsgiServer(create_app(services), "127.0.0.1:0", name="api")
    await server.start()
    yield Api(server.url, services, names, detector.rules[0])
    await server.stop()
