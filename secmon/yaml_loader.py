"""The YAML loader for text users write (the configuration, Sigma rules), and what its errors say.

PyYAML's safe constructor raises a bare :class:`ValueError`, with no position, for a scalar that
looks like a value of some type but is not one (``date: 2023-02-30``, ``!!int x``, an integer of
5,000 digits): a caller that catches :class:`yaml.YAMLError`, as it should, lets it escape, and
one such rule file once stopped the whole rule set from loading. :class:`SafeLoader` keeps such a
scalar as the text it was written as, so that what reads the document (the configuration's
model, pySigma) says what is wrong with it at its key, as it would for any other bad value. It
is libyaml's parser (``CSafeLoader``), which also bounds nesting (1,000 levels) instead of
recursing until Python's stack runs out.

:func:`yaml_problem` says what a YAMLError means and on which line, for every kind of YAMLError
(a forbidden control character is reported by libyaml with a byte offset only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.error import MarkedYAMLError
from yaml.reader import ReaderError


class SafeLoader(yaml.CSafeLoader):
    """``yaml.CSafeLoader``, but a scalar that cannot be built as the type it resolves to stays a string."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        deep_before = self.deep_construct
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):
            if not isinstance(node, yaml.ScalarNode):
                raise
            # Undo what the failed construction left half done, as a successful one would have.
            self.deep_construct = deep_before
            self.recursive_objects.pop(node, None)
            value = self.constructed_objects[node] = str(node.value)
            return value


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """What is wrong with a YAML text, in one sentence, and where (1-based) when PyYAML says."""

    reason: str
    line: int | None = None
    column: int | None = None


def yaml_problem(error: yaml.YAMLError, text: str) -> YamlProblem:
    """The problem ``error`` reports in ``text``, with its line even where PyYAML gives an offset only."""
    if isinstance(error, ReaderError):
        # A character YAML does not allow (a control character): libyaml says at which byte only.
        before = text.encode("utf-8", "surrogatepass")[: error.position]
        last_line = before.rpartition(b"\n")[2].decode("utf-8", "replace")
        return YamlProblem(
            f"character #x{error.character:04x} is not allowed in YAML ({error.reason})",
            before.count(b"\n") + 1,
            len(last_line) + 1,
        )
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        reason = error.problem or error.context or "invalid YAML"
        return YamlProblem(reason, mark.line + 1 if mark else None, mark.column + 1 if mark else None)
    return YamlProblem(str(error))
