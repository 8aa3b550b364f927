"""What every fuzz test shares: Hypothesis' bounds, and strategies over the generators of ``secmon bench fuzz``.

``FUZZ`` is derandomized (the examples are a function of the test, so every run and every machine
tries the same ones), keeps no example database, and sets no deadline: a slow machine must not
fail a test that a fast one passes. ``examples(n)`` is the same with ``n`` examples. Budgets are
kept small, so that the whole folder takes seconds; ``secmon bench fuzz`` runs a million inputs.

The generators of :mod:`secmon.bench.fuzz.cases` take their choices from a
:class:`~secmon.bench.fuzz.draw.Draw`: :class:`HypothesisDraw` makes each one a Hypothesis draw
(a field's text is one ``st.text``), so that Hypothesis picks edge values field by field and
shrinks a failure to a small input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from secmon.bench.fuzz.cases import Case
from secmon.bench.fuzz.damage import damage_bytes, damage_text
from secmon.bench.fuzz.draw import Draw

T = TypeVar("T")

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    # Both are timings of the generators on this machine, not properties of the parsers.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)


def examples(count: int) -> settings:
    """:data:`FUZZ` with ``count`` examples."""
    return settings(FUZZ, max_examples=count)


class HypothesisDraw(Draw):
    """Each choice a generator makes, drawn by Hypothesis."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def chance(self, probability: float) -> bool:
        return self._draw(st.integers(0, 99)) < probability * 100

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))

    def text(self, alphabet: str, shortest: int, longest: int) -> str:
        return self._draw(st.text(alphabet, min_size=shortest, max_size=longest))

    def binary(self, shortest: int, longest: int) -> bytes:
        return self._draw(st.binary(min_size=shortest, max_size=longest))

    def floating(self, low: float, high: float) -> float:
        return self._draw(st.floats(low, high, allow_nan=False, allow_infinity=False))


def cases(generator: Callable[[Draw], T]) -> st.SearchStrategy[T]:
    """What ``generator`` makes, drawn by Hypothesis."""

    @st.composite
    def drawn(draw: st.DrawFn) -> T:
        return generator(HypothesisDraw(draw))

    return drawn()


def damaged_text(*generators: Callable[[Draw], Case[str]]) -> st.SearchStrategy[str]:
    """A valid input from one of ``generators`` with a few characters damaged (or spliced with another)."""

    def damaged(d: Draw) -> str:
        valid = d.choice(generators)(d).data
        return damage_text(d, valid, [d.choice(generators)(d).data])

    return cases(damaged)


def damaged_bytes(valid: Sequence[bytes], keep: int = 0) -> st.SearchStrategy[bytes]:
    """One of ``valid`` with a few bytes damaged, mostly past its first ``keep``."""
    return cases(lambda d: damage_bytes(d, d.choice(valid), valid, keep=keep))


def received_bytes() -> st.SearchStrategy[str]:
    """Any bytes, made text as the sources make it (UTF-8, invalid sequences as backslash escapes)."""
    return st.binary(max_size=600).map(lambda data: data.decode("utf-8", "backslashreplace"))
