"""Index templates for events, alerts and dead letters, installed idempotently at start.

* ``<prefix>-events-<dataset>``: one data stream per ``event.dataset``, ECS mappings.
* ``<prefix>-alerts``: a plain index (alerts are updated in place by triage).
* ``<prefix>-deadletter``: a data stream of rejected documents with the original and the reason.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch

from secmon import __version__
from secmon.config import ElasticsearchSettings
from secmon.errors import StoreError
from secmon.store.errors import error_reason, error_type
from secmon.store.names import IndexNames
from secmon.store.ready import READY_SECONDS, wait_for_primaries


@cache
def load_mapping(name: str) -> dict[str, Any]:
    """The mapping shipped as ``secmon/store/mappings/<name>.json``."""
    text = resources.files("secmon.store").joinpath("mappings", f"{name}.json").read_text("utf-8")
    mapping: dict[str, Any] = json.loads(text)
    return mapping


def index_settings(settings: ElasticsearchSettings) -> dict[str, Any]:
    return {"number_of_shards": 1, "auto_expand_replicas": settings.replicas, "refresh_interval": "1s"}


async def install_templates(
    client: AsyncElasticsearch, settings: ElasticsearchSettings, *, ready_timeout: float = READY_SECONDS
) -> None:
    """Create or update every template, and the alerts index; safe to run at every start.

    Returns once the alerts index is searchable; raises :class:`~secmon.errors.IndexNotReady`
    when its primary has not started after ``ready_timeout`` seconds.
    """
    names = IndexNames(settings.index_prefix)
    meta = {"managed_by": "secmon", "secmon_version": __version__}
    component_templates = {
        names.template("settings"): {"settings": index_settings(settings)},
        names.template("ecs-mappings"): {"mappings": load_mapping("events")},
    }
    index_templates: dict[str, dict[str, Any]] = {
        names.template("events"): {
            "index_patterns": [names.events_pattern],
            "data_stream": {},
            "composed_of": list(component_templates),
            "priority": 200,
        },
        names.template("deadletter"): {
            "index_patterns": [names.deadletter],
            "data_stream": {},
            "composed_of": [names.template("settings")],
            "template": {"mappings": load_mapping("deadletter")},
            "priority": 200,
        },
        names.template("alerts"): {
            "index_patterns": [names.alerts],
            "composed_of": [names.template("settings")],
            # Analysts wait for alerts: make them searchable within a quarter second, not the
            # default second (the alerts index is small, so frequent refreshes are cheap).
            "template": {"mappings": load_mapping("alerts"), "settings": {"index": {"refresh_interval": "250ms"}}},
            "priority": 200,
        },
    }
    try:
        for name, body in component_templates.items():
            await client.cluster.put_component_template(name=name, template=body, meta=meta)
        for name, body in index_templates.items():
            await client.indices.put_index_template(name=name, body={**body, "_meta": meta})
        if not await client.indices.exists(index=names.alerts):
            # No wait here: wait_for_primaries below waits for whoever created it.
            await client.indices.create(index=names.alerts, wait_for_active_shards=0)
        else:  # created by an older secmon: add the fields it lacks (mappings only grow)
            await client.indices.put_mapping(index=names.alerts, **load_mapping("alerts"))
    except ApiError as exc:
        # Already there: another secmon instance created the alerts index first.
        if error_type(exc) != "resource_already_exists_exception":
            raise StoreError(f"Elasticsearch refused secmon's index templates: {error_reason(exc)}") from None
    # The API lists alerts as soon as this returns: a search of an index whose primary has not
    # started fails with a 503 instead of finding nothing.
    await wait_for_primaries(client, names.alerts, ready_timeout)
