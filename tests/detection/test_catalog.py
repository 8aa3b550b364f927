"""The engine honours the rule catalog: uploaded rules are matched, disabled ones are not, changes reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from secmon.config import DetectionSettings
from secmon.detection.catalog import RuleCatalog, RuleConflict, RuleRefused
from secmon.detection.stage import DetectionStage
from secmon.store import Document

RULE_ID = "0f0e0d0c-1b2a-4c3d-8e4f-5a6b7c8d9e01"
SHIPPED_ID = "ce69d572-59aa-4839-ae0f-20366e0fa924"  # rules/linux/ssh_failed_login.yml


def rule_text(rule_id: str = RULE_ID, user: str = "root") -> str:
    return f"""\
title: Root SSH failure
id: {rule_id}
level: high
logsource: {{product: linux, service: sshd}}
detection:
  selection: {{event.outcome: failure, user.name: {user}}}
  condition: selection
"""


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


@pytest.fixture
def catalog(tmp_path: Path) -> RuleCatalog:
    configured = tmp_path / "configured"
    configured.mkdir()
    settings = DetectionSettings(rules=[configured], reload_interval=0.1, group_window="0s")
    return RuleCatalog(settings, tmp_path / "state")


def stage_of(catalog: RuleCatalog) -> DetectionStage:
    return DetectionStage.load(
        catalog.settings, "alerts", cache_dir=None, telemetry=None, state_dir=catalog.files.state_dir
    )


async def test_the_stage_matches_uploaded_rules_and_reloads_on_changes(catalog: RuleCatalog) -> None:
    stage = stage_of(catalog)
    assert alerted(stage, "root") == set()
    assert not await stage.reload_if_changed()

    catalog.upload(rule_text())
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == {RULE_ID}
    assert alerted(stage, "bob") == set()

    catalog.set_enabled(RULE_ID, False)
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == set()

    catalog.set_enabled(RULE_ID, True)
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == {RULE_ID}

    catalog.upload(rule_text(user="bob"))  # replaced
    assert await stage.reload_if_changed()
    assert alerted(stage, "root") == set()
    assert alerted(stage, "bob") == {RULE_ID}

    catalog.delete(RULE_ID)
    assert await stage.reload_if_changed()
    assert alerted(stage, "bob") == set()


def test_a_disabled_rule_is_not_loaded_at_start(catalog: RuleCatalog) -> None:
    catalog.upload(rule_text())
    catalog.set_enabled(RULE_ID, False)
    assert RULE_ID not in {rule.id for rule in stage_of(catalog).detector.rules}
    assert catalog.get(RULE_ID).info.enabled is False


def test_a_disabled_base_rule_still_feeds_its_correlations(tmp_path: Path) -> None:
    catalog = RuleCatalog(DetectionSettings(), tmp_path / "state")  # the shipped rules
    catalog.set_enabled(SHIPPED_ID, False)  # ssh_failed_login: the brute force correlation counts it
    detector = stage_of(catalog).detector
    assert SHIPPED_ID in {rule.id for rule in detector.rules}
    assert SHIPPED_ID in detector.silenced


def test_uploads_are_refused_with_lines_and_conflicts(tmp_path: Path) -> None:
    catalog = RuleCatalog(DetectionSettings(), tmp_path / "state")
    with pytest.raises(RuleRefused) as refused:
        catalog.upload(rule_text().replace("user.name: root", "user.name|re: '(?=root)'"))
    assert refused.value.problems[0].line == 6
    with pytest.raises(RuleConflict):
        catalog.upload(rule_text(SHIPPED_ID))
    with pytest.raises(RuleConflict):
        catalog.delete(SHIPPED_ID)
    listed = {info.id: info for info in catalog.listing().rules}
    assert listed[SHIPPED_ID].origin == "shipped" and listed[SHIPPED_ID].loaded
    assert any(info.type == "correlation" and info.loaded for info in listed.values())


def test_a_rule_is_tested_alone_against_events(catalog: RuleCatalog) -> None:
    events = [event("bob").source, event("root").source]
    result = catalog.test(events, text=rule_text(), event_ids=["a", "b"])
    assert result.scanned == 2
    assert [(m.event_id, m.rule_ids) for m in result.matches] == [("b", (RULE_ID,))]
