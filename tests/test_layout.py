"""How the test suite is laid out: what tests share lives in ``tests/support`` (or a conftest), not in a test module.

A test module importing another ties the two together (a test imported by name even runs
twice) and hides the shared piece where nobody looks for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(name: str) -> bool:
    package, *parts = name.split(".")
    return package == "tests" and any(part.startswith("test_") for part in parts)


def imports_of_test_modules(source: str) -> list[tuple[int, str]]:
    """The modules ``tests.<...>.test_*`` that ``source`` imports, with the line of each import.

    ``from tests.x import test_y`` counts (``test_y`` is a module), and so do relative imports of one.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            # A relative import in a test file stays inside tests/: check it as under ``tests``.
            package = "tests" if node.level else ""
            module = ".".join(filter(None, (package, node.module)))
            if _is_test_module(module):
                found.append((node.lineno, module))
            else:
                named = (f"{module}.{alias.name}" for alias in node.names)
                found += [(node.lineno, name) for name in named if _is_test_module(name)]
    return sorted(found)


def test_the_check_finds_an_import_of_a_test_module_in_every_form() -> None:
    source = (
        "import tests.test_service\n"
        "from tests.test_import import run_import\n"
        "from tests.collect import test_file_source\n"
        "from tests.support.wait import until\n"
        "from secmon.test_helpers import x\n"
        "from .test_hunt import LOG_CLEARED\n"
        "from . import test_reimport, conftest\n"
    )
    assert imports_of_test_modules(source) == [
        (1, "tests.test_service"),
        (2, "tests.test_import"),
        (3, "tests.collect.test_file_source"),
        (6, "tests.test_hunt"),
        (7, "tests.test_reimport"),
    ]


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, name in imports_of_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "move what is shared into tests/support/ or a conftest:\n" + "\n".join(offenders)
