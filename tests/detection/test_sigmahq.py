"""The whole SigmaHQ rule set: every rule loads or is reported with a reason, and the cache makes restarts fast."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from secmon.collect.transforms.normalize_winlog import dataset_of
from secmon.detection.detector import Detector, load_detector
from secmon.detection.ir import AllOf, Leaf, Node, Op
from secmon.detection.loader import rule_files
from secmon.detection.rules import Rule

SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sigma"


@pytest.fixture(scope="module")
def sigmahq(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    """Every rule of SigmaHQ's rules/ folder, loaded as the service loads them (no cache shared with other tests)."""
    return load_detector([SIGMA / "rules"], cache_dir=tmp_path_factory.mktemp("cache"))


def test_every_sigmahq_rule_loads_or_is_reported(sigmahq: Detector) -> None:
    rules_dir = SIGMA / "rules"
    detector = sigmahq
    files = {str(p) for p in rule_files([rules_dir])}
    loaded = {rule.path for rule in detector.rules}
    reported = {problem.path for problem in detector.ruleset.problems}
    assert files == loaded | reported, "some rule file neither loaded nor reported"
    assert all(problem.reason for problem in detector.ruleset.problems)
    kinds = collections.Counter(problem.kind for problem in detector.ruleset.problems)
    print(f"\nSigmaHQ rules: {len(files)} files, {len(detector.rules)} loaded, not loaded: {dict(kinds)}")
    # Every Windows rule maps onto secmon's events; the rest that are skipped are for log
    # sources secmon does not collect (cloud services, macOS ...), and say so.
    windows = [p for p in detector.ruleset.problems if "/windows/" in p.path and p.kind != "logsource"]
    assert windows == []
    assert set(kinds) <= {"logsource"}


def required_values(node: Node) -> dict[str, set[str]]:
    """The values each field must take for ``node`` to hold: the equality leaves it ANDs, intersected per field."""
    required: dict[str, set[str]] = {}
    conjuncts = [node]
    while conjuncts:
        item = conjuncts.pop()
        if isinstance(item, AllOf):
            conjuncts.extend(item.items)
        elif isinstance(item, Leaf) and item.op is Op.EQ and item.field is not None:
            values = {str(v) if item.cased else str(v).lower() for v in item.values}
            required[item.field] = required[item.field] & values if item.field in required else values
    return required


def test_no_loaded_sigmahq_rule_requires_an_event_that_cannot_exist(sigmahq: Detector) -> None:
    # A rule's logsource selection is ANDed onto its detection. Two selections ANDed (the
    # packet flows' event.dataset onto Sysmon's channel and event id) make a rule that loads and
    # can never match: caught here by the values one field would need at once. A Windows event's
    # event.dataset follows from its channel (secmon/collect/transforms/normalize_winlog/).
    channels = {
        channel.lower(): channel
        for selection in sigmahq.logsources.selections.values()
        for field, values in selection.fields
        if field == "winlog.channel"
        for channel in values
    }

    def impossible(rule: Rule) -> str | None:
        required = required_values(rule.condition)
        if "winlog.channel" in required:
            datasets = {dataset_of(channels.get(c, c), None).lower() for c in required["winlog.channel"]}
            required["event.dataset"] = required.get("event.dataset", datasets) & datasets
        empty = sorted(field for field, values in required.items() if not values)
        return f"{rule.path}: no event has {', '.join(empty)}" if empty else None

    problems = [problem for rule in sigmahq.rules if (problem := impossible(rule))]
    assert problems == []
    # The check sees the selections: every loaded Windows rule requires its channel.
    windows = [rule for rule in sigmahq.rules if rule.logsource[0] == "windows"]
    assert windows and all("winlog.channel" in required_values(rule.condition) for rule in windows)


def test_the_rule_cache_is_used_and_invalidated_by_a_change(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SIGMA / "rules" / "windows" / "builtin" / "system", rules)
    first = load_detector([rules], cache_dir=tmp_path / "cache")
    again = load_detector([rules], cache_dir=tmp_path / "cache")
    assert not first.stats.from_cache and again.stats.from_cache
    assert [r.id for r in again.rules] == [r.id for r in first.rules]
    victim = next(rules.rglob("*.yml"))
    victim.write_text(victim.read_text().replace("level: ", "level: critical\nx_old_level: ", 1))
    changed = load_detector([rules], cache_dir=tmp_path / "cache")
    assert not changed.stats.from_cache
    assert "critical" in {r.level for r in changed.rules if r.path == str(victim)}
