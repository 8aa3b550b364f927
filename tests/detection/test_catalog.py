"""The engine honours the rule catalog: uploaded rules are matched, disabled ones are not, changes reload;
the catalog is shared through Elasticsearch and mirrored into each state_dir."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import AsyncElasticsearch

from secmon.config import DetectionSettings, ElasticsearchSettings
from secmon.detection.catalog import RuleCatalog, RuleConflict, RuleRefused
from secmon.detection.catalog_store import CatalogFiles, CatalogMirror, RuleStore
from secmon.detection.stage import DetectionStage
from secmon.store import Document, IndexNames, connect
from tests.support.net import free_port
from tests.support.rules import sshd_failure_rule

RULE_ID = "0f0e0d0c-1b2a-4c3d-8e4f-5a6b7c8d9e01"
SHIPPED_ID = "ce69d572-59aa-4839-ae0f-20366e0fa924"  # rules/linux/ssh_failed_login.yml


def rule_text(rule_id: str = RULE_ID, user: str = "root") -> str:
    return sshd_failure_rule(rule_id, user, "Root SSH failure")


def event(user: str) -> Document:
    source: dict[str, Any] = {
        "@timestamp": "2026-11-24T10:00:00Z",
        "event": {"dataset": "system.auth", "outcome": "failure"},
        "process": {"name": "sshd"},
        "user": {"name": user},
    }
    return Document("events", f"evt-{user}", source)


def alerted(stage: DetectionStage, user: str) -> set[str]:
    return {alert.source["rule"]["id"] for alert in stage([event(user)])}


def own_index(names: IndexNames) -> str:
    """A rules index of the test's own: a rule one test disables stays enabled for the others."""
    return f"{names.rules}-{secrets.token_hex(4)}"


async def shared_catalog(
    settings: DetectionSettings, state_dir: Path, es: AsyncElasticsearch, index: str
) -> RuleCatalog:
    mirror = CatalogMirror(RuleStore(es, index), CatalogFiles(state_dir))
    await mirror.start()
    return RuleCatalog(settings, mirror)


@pytest.fixture
def settings(tmp_path: Path) -> DetectionSettings:
    configured = tmp_path / "configured"
    configured.mkdir()
    return DetectionSettings(rules=[configured], reload_interval=0.1, group_window="0s")


@pytest.fixture
async def catalog(
    settings: DetectionSettings, tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> RuleCatalog:
    return await shared_catalog(settings, tmp_path / "state", es, own_index(names))


def stage_of(catalog: RuleCatalog) -> DetectionStage:
    return DetectionStage.load(
        catalog.settings, "alerts", cache_dir=None, telemetry=None, state_dir=catalog.files.state_dir
    )


async def test_the_stage_matches_uploaded_rules_and_reloads_on_changes(catalog: RuleCatalog) -> None:
    stage = stage_of(catalog)
    assert alerted(stage, "root") == set()
    assert not await stage.reload_if_changed()

    await catalog.upload(rule_text())
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == {RULE_ID}
    assert alerted(stage, "bob") == set()

    await catalog.set_enabled(RULE_ID, False)
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == set()

    await catalog.set_enabled(RULE_ID, True)
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == {RULE_ID}

    await catalog.upload(rule_text(user="bob"))  # replaced
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == set()
    assert alerted(stage, "bob") == {RULE_ID}

    await catalog.delete(RULE_ID)
    assert await stage.reload_if_changed()
    assert alerted(stage, "bob") == set()


async def test_a_disabled_rule_is_not_loaded_at_start(catalog: RuleCatalog) -> None:
    await catalog.upload(rule_text())
    await catalog.set_enabled(RULE_ID, False)
    assert RULE_ID not in {rule.id for rule in stage_of(catalog).detector.rules}
    assert catalog.get(RULE_ID).info.enabled is False


async def test_a_disabled_base_rule_still_feeds_its_correlations(
    tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> None:
    catalog = await shared_catalog(DetectionSettings(), tmp_path / "state", es, own_index(names))  # the shipped rules
    await catalog.set_enabled(SHIPPED_ID, False)  # ssh_failed_login: the brute force correlation counts it
    detector = stage_of(catalog).detector
    assert SHIPPED_ID in {rule.id for rule in detector.rules}
    assert SHIPPED_ID in detector.silenced


async def test_uploads_are_refused_with_lines_and_conflicts(
    tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> None:
    catalog = await shared_catalog(DetectionSettings(), tmp_path / "state", es, own_index(names))
    with pytest.raises(RuleRefused) as refused:
        await catalog.upload(rule_text().replace("user.name: root", "user.name|re: '(?=root)'"))
    assert refused.value.problems[0].line == 6
    with pytest.raises(RuleConflict):
        await catalog.upload(rule_text(SHIPPED_ID))
    with pytest.raises(RuleConflict):
        await catalog.delete(SHIPPED_ID)
    listed = {info.id: info for info in catalog.listing().rules}
    assert listed[SHIPPED_ID].origin == "shipped" and listed[SHIPPED_ID].loaded
    assert any(info.type == "correlation" and info.loaded for info in listed.values())


def test_a_rule_is_tested_alone_against_events(catalog: RuleCatalog) -> None:
    events = [event("bob").source, event("root").source]
    result = catalog.test(events, text=rule_text(), event_ids=["a", "b"])
    assert result.scanned == 2
    assert [(m.event_id, m.rule_ids) for m in result.matches] == [("b", (RULE_ID,))]


async def test_changes_reach_another_instance_at_its_next_sync(
    settings: DetectionSettings, tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> None:
    index = own_index(names)
    first = await shared_catalog(settings, tmp_path / "first", es, index)
    second = await shared_catalog(settings, tmp_path / "second", es, index)
    engine = stage_of(second)

    upload = await first.upload(rule_text(), by="alice")
    assert upload.replaced is None
    assert not await engine.reload_if_changed()  # not mirrored yet
    assert await second.mirror.sync() == 1
    assert await engine.reload_if_changed()
    assert alerted(engine, "root") == {RULE_ID}

    # A change made on the second instance is mirrored there at once; the first sees the text it replaced.
    replaced = await second.upload(rule_text(user="bob"), by="bob")
    assert replaced.replaced == rule_text()
    _, was_enabled = await second.set_enabled(RULE_ID, False, by="bob")
    assert was_enabled
    assert await engine.reload_if_changed()
    assert alerted(engine, "bob") == set()
    _, was_enabled = await first.set_enabled(RULE_ID, False)  # already disabled, by the second
    assert not was_enabled
    assert await first.mirror.sync() == 1  # the replaced text; the disabled list was written by the change
    assert first.get(RULE_ID).yaml == rule_text(user="bob") and not first.get(RULE_ID).info.enabled

    await first.delete(RULE_ID)
    await second.mirror.sync()
    assert not second.files.rule_file(RULE_ID).exists()
    assert second.files.disabled() == frozenset()


async def test_a_rule_uploaded_on_another_instance_can_be_switched_before_the_sync(
    settings: DetectionSettings, tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> None:
    index = own_index(names)
    first = await shared_catalog(settings, tmp_path / "first", es, index)
    second = await shared_catalog(settings, tmp_path / "second", es, index)
    await first.upload(rule_text())
    info, was_enabled = await second.set_enabled(RULE_ID, False)
    assert was_enabled and not info.enabled and info.origin == "uploaded"


async def test_the_files_of_an_older_secmon_are_imported_once(
    settings: DetectionSettings, tmp_path: Path, es: AsyncElasticsearch, names: IndexNames
) -> None:
    index = own_index(names)
    other_id = "1f0e0d0c-1b2a-4c3d-8e4f-5a6b7c8d9e02"
    shared = await shared_catalog(settings, tmp_path / "shared", es, index)
    await shared.upload(rule_text(other_id, user="carol"))  # already in the index: the index's text wins

    old = CatalogFiles(tmp_path / "old")
    old.write_rule(RULE_ID, rule_text())
    old.write_rule(other_id, rule_text(other_id, user="dave"))
    old.write_disabled([RULE_ID])
    upgraded = await shared_catalog(settings, old.state_dir, es, index)

    snapshot = await upgraded.mirror.store.snapshot()
    assert snapshot.rules == {RULE_ID: rule_text(), other_id: rule_text(other_id, user="carol")}
    assert snapshot.disabled == {RULE_ID}
    assert old.rule_file(other_id).read_text() == rule_text(other_id, user="carol")

    # Imported once: a rule deleted since then elsewhere does not come back from an old copy.
    await shared.delete(RULE_ID)
    old.write_rule(RULE_ID, rule_text())
    again = CatalogMirror(RuleStore(es, index), old)
    assert await again.migrate() == 0
    await again.sync()
    assert not old.rule_file(RULE_ID).exists()


async def test_changes_fail_and_files_stay_when_elasticsearch_cannot_be_reached(
    settings: DetectionSettings, tmp_path: Path, catalog: RuleCatalog
) -> None:
    await catalog.upload(rule_text())
    unreachable = connect(ElasticsearchSettings(url=f"http://127.0.0.1:{free_port()}"), max_retries=0)  # type: ignore[call-arg]
    try:
        offline = RuleCatalog(settings, CatalogMirror(RuleStore(unreachable, "rules"), catalog.files))
        with pytest.raises(TransportConnectionError):
            await offline.set_enabled(RULE_ID, False)
        with pytest.raises(TransportConnectionError):
            await offline.mirror.sync()
    finally:
        await unreachable.close()
    assert offline.get(RULE_ID).info.enabled
    assert RULE_ID in {rule.id for rule in stage_of(offline).detector.rules}
