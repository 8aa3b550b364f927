"""The whole SigmaHQ rule set: every rule loads or is reported with a reason, and the cache makes restarts fast."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

from secmon.detection.detector import load_detector
from secmon.detection.loader import rule_files

SIGMA = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sigma"


def test_every_sigmahq_rule_loads_or_is_reported(tmp_path: Path) -> None:
    rules_dir = SIGMA / "rules"
    detector = load_detector([rules_dir], cache_dir=tmp_path / "cache")
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
