"""The rule cache key: a change to any module of the detection package, subpackages included, gives a new key."""

from __future__ import annotations

import shutil
from pathlib import Path

import secmon.detection
from secmon.detection import cache
from secmon.detection.cache import source_digest

PACKAGE = Path(secmon.detection.__file__).parent


def test_the_key_digests_the_source_of_the_whole_detection_package() -> None:
    assert cache._detection_code_digest() == source_digest(PACKAGE)


def test_every_module_changes_the_source_digest(tmp_path: Path) -> None:
    copy = tmp_path / "detection"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    modules = sorted(copy.rglob("*.py"))
    assert any(len(module.relative_to(copy).parts) > 1 for module in modules)  # correlation/ is a subpackage
    before = source_digest(copy)
    unchanged = []
    for module in modules:
        text = module.read_bytes()
        module.write_bytes(text + b"\n# changed\n")
        if source_digest(copy) == before:
            unchanged.append(module.relative_to(copy).as_posix())
        module.write_bytes(text)
    assert unchanged == []
    assert source_digest(copy) == before


def test_a_module_moved_to_a_subpackage_changes_the_source_digest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "engine.py").write_text("x = 1\n")
    before = source_digest(tmp_path)
    (tmp_path / "engine.py").rename(tmp_path / "sub" / "engine.py")
    assert source_digest(tmp_path) != before
