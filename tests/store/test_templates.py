"""Index templates: installed idempotently, and events get their ECS field types."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch

from secmon.collect.sinks.elasticsearch import BulkWriter
from secmon.config import ElasticsearchSettings, WriterSettings
from secmon.store import Document, IndexNames, Outcome, document_id, install_templates


async def test_installing_twice_changes_nothing_and_fails_nothing(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings, names: IndexNames
) -> None:
    before = await es.indices.get_index_template(name=names.template("events"))
    await install_templates(es, es_settings)
    after = await es.indices.get_index_template(name=names.template("events"))
    assert before["index_templates"] == after["index_templates"]
    assert await es.indices.exists(index=names.alerts)


async def test_events_are_stored_in_a_data_stream_per_dataset_with_ecs_types(
    es: AsyncElasticsearch, names: IndexNames
) -> None:
    event = {
        "@timestamp": "2026-11-24T10:00:00Z",
        "event": {"dataset": "Templates.SSHD", "original": "raw line"},
        "source": {"ip": "2001:db8::1", "port": 50022},
        "winlog": {"event_data": {"LogonType": 3, "TargetUserName": "bob"}},
        "message": "Failed password for bob",
    }
    async with BulkWriter(es, WriterSettings(), names) as writer:  # type: ignore[call-arg]
        assert await writer.write([Document(names.events("Templates.SSHD"), document_id("t", 1), event)]) == [
            Outcome.STORED
        ]
    stream = names.events("Templates.SSHD")
    assert stream.endswith("-events-templates.sshd")
    info = await es.indices.get(index=stream)
    [(backing, detail)] = info.body.items()
    assert backing.startswith(f".ds-{stream}-")
    assert detail["data_stream"] == stream
    fields = await es.indices.get_field_mapping(
        index=stream, fields=["source.ip", "source.port", "message", "winlog.event_data.LogonType", "event.original"]
    )
    types = {name: next(iter(m["mapping"].values()))["type"] for name, m in fields[backing]["mappings"].items()}
    assert types == {
        "source.ip": "ip",
        "source.port": "long",
        "message": "text",
        "winlog.event_data.LogonType": "keyword",  # EventData values are strings in Sigma rules
        "event.original": "keyword",
    }
    await es.indices.refresh(index=stream)
    hits = await es.search(index=stream, query={"term": {"source.ip": "2001:db8::/32"}})
    assert hits["hits"]["total"]["value"] == 1


async def test_an_alerts_index_of_an_earlier_version_is_brought_up_to_date(
    es: AsyncElasticsearch, es_settings: ElasticsearchSettings
) -> None:
    """Alerts indices made before triage existed map alert.notes as text; starting must still work."""
    settings = es_settings.model_copy(update={"index_prefix": f"{es_settings.index_prefix}-legacy"})
    legacy = IndexNames(settings.index_prefix).alerts
    earlier = {"dynamic": False, "properties": {"alert": {"properties": {"notes": {"type": "text"}}}}}
    await es.indices.create(index=legacy, mappings=earlier)
    await install_templates(es, settings)
    mapping = (await es.indices.get_mapping(index=legacy))[legacy]["mappings"]
    assert mapping["properties"]["notes"]["properties"]["text"]["type"] == "text"  # triage notes fit now
    assert mapping["properties"]["event"]["properties"]["severity"]["type"] == "long"
