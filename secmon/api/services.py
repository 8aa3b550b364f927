"""What the API's routes work with, built once per process and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry

from secmon.auth import KeyStore
from secmon.auth.sessions import SessionStore
from secmon.config import Settings
from secmon.detection.catalog import RuleCatalog
from secmon.detection.catalog_store import CatalogFiles, CatalogMirror, RuleStore
from secmon.notify import Notifier
from secmon.store.names import IndexNames
from secmon.triage.audit import AuditLog
from secmon.triage.events import EventSearch
from secmon.triage.store import AlertStore


@dataclass(slots=True)
class ApiServices:
    """The stores behind the routes; ``registries`` are the Prometheus metrics /metrics serves."""

    settings: Settings
    client: AsyncElasticsearch
    keys: KeyStore
    alerts: AlertStore
    events: EventSearch
    audit: AuditLog
    rules: RuleCatalog
    sessions: SessionStore
    registries: list[CollectorRegistry] = field(default_factory=list)
    notifier: Notifier | None = None  # set where notifications run (secmon up, secmon api)

    @classmethod
    def build(
        cls,
        settings: Settings,
        client: AsyncElasticsearch,
        keys: KeyStore,
        rules_mirror: CatalogMirror | None = None,
    ) -> ApiServices:
        """The services; ``rules_mirror`` is the service's own when it mirrors the rule catalog already."""
        names = IndexNames(settings.elasticsearch.index_prefix)
        audit = AuditLog(client, names)
        mirror = rules_mirror or CatalogMirror(RuleStore(client, names.rules), CatalogFiles(settings.state_dir))
        rules = RuleCatalog(settings.detection, mirror)
        sessions = SessionStore(client, names, keys, lifetime=timedelta(hours=settings.api.session_hours))
        alerts = AlertStore(client, names, audit)
        return cls(settings, client, keys, alerts, EventSearch(client, names), audit, rules, sessions)

    async def prepare(self) -> None:
        """Create the indices the API writes to (safe at every start)."""
        await self.audit.ensure_index()
        await self.sessions.ensure_index()
        await self.rules.mirror.start()
