"""The modules of secmon.detection import one another without a circle.

Every import counts, those inside functions and ``if TYPE_CHECKING:`` blocks too: hiding an
import there dodges the error, not the circle. A subpackage (``correlation/``) counts as one
module, since importing any of its modules runs its ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import secmon.detection

PACKAGE = Path(secmon.detection.__file__).parent


def imports_between_modules(package: Path, name: str) -> dict[str, set[str]]:
    """For each module directly under ``package`` (a subpackage is one), the others it imports."""
    graph: dict[str, set[str]] = {}
    paths = sorted(package.rglob("*.py"))
    tops = {path.relative_to(package).with_suffix("").parts[0] for path in paths}
    for path in paths:
        parts = path.relative_to(package).with_suffix("").parts
        module = ".".join((name, *(part for part in parts if part != "__init__")))
        edges = graph.setdefault(parts[0], set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, one level up per extra dot
                    anchor = module.split(".")
                    anchor = anchor[: len(anchor) - node.level + (parts[-1] == "__init__")]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                if target.startswith(name + "."):
                    imported = target[len(name) + 1 :].split(".")[0]
                    if imported in tops and imported != parts[0]:
                        edges.add(imported)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import circle through each module that is on one, as the path that closes it."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_secmon_detection_has_no_import_circle() -> None:
    graph = imports_between_modules(PACKAGE, "secmon.detection")
    assert {"rules", "loader", "correlation", "detector"} <= graph.keys()
    assert circles(graph) == []


def test_a_circle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    (tmp_path / "low.py").write_text("def later():\n    from pkg.high import thing\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("from pkg.sub.part import thing\n")
    (tmp_path / "sub" / "part.py").write_text("from pkg import low\n")
    (tmp_path / "high.py").write_text("from pkg.sub import thing\n")
    assert circles(imports_between_modules(tmp_path, "pkg")) == [["high", "sub", "low", "high"]]
