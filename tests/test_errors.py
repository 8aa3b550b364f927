"""The exception tree drawn in ``secmon/errors.py`` is the one in the code, class by class."""

from __future__ import annotations

import importlib
import pkgutil
import re

import secmon
from secmon import errors
from secmon.errors import SecmonError

# "│   ├── KeyStoreUnavailable  [secmon.auth.keys] ...": the depth, the name and where it lives.
_ENTRY = re.compile(r"^(?P<indent>[│ ]*)(?:[├└]── )?(?P<name>[A-Z]\w+)(?:\s+\[(?P<module>[\w.]+)\])?")


def drawn() -> dict[type[BaseException], type[BaseException] | None]:
    """Each class of the drawing and its parent there (None for the root)."""
    assert errors.__doc__
    lines = errors.__doc__.split("\n")
    start = next(n for n, line in enumerate(lines) if line.strip() == "SecmonError")
    parents: dict[type[BaseException], type[BaseException] | None] = {}
    path: list[tuple[int, type[BaseException], str]] = []  # the ancestors: depth, class, module
    for line in lines[start:]:
        if not line.strip():
            break
        match = _ENTRY.match(line.strip("\n")[4:])  # the drawing is indented by four spaces
        assert match, line
        depth = len(match["indent"]) // 4 + (1 if "──" in line else 0)
        while path and path[-1][0] >= depth:
            path.pop()
        module = match["module"] or (path[-1][2] if path else "secmon.errors")
        cls = getattr(importlib.import_module(module), match["name"], None)
        assert isinstance(cls, type), f"{match['name']} is drawn in {module}, which has no such class"
        parents[cls] = path[-1][1] if path else None
        path.append((depth, cls, module))
    return parents


def test_every_drawn_class_exists_where_drawn_under_its_drawn_parent() -> None:
    for cls, parent in drawn().items():
        if parent is None:
            assert cls is SecmonError
        else:
            assert parent in cls.__bases__, f"{cls.__name__} is drawn under {parent.__name__}: {cls.__bases__}"


def test_every_secmon_error_in_the_code_is_drawn() -> None:
    for module in pkgutil.walk_packages(secmon.__path__, "secmon."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)

    def subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
        found = {sub for sub in cls.__subclasses__() if sub.__module__.startswith("secmon.")}
        return found.union(*(subclasses(sub) for sub in found))

    missing = {f"{cls.__module__}.{cls.__name__}" for cls in subclasses(SecmonError) - set(drawn())}
    assert not missing, f"SecmonError subclasses not drawn in secmon/errors.py: {sorted(missing)}"
