"""Where the generators of :mod:`.cases` and :mod:`.damage` take their choices from.

A generator asks a :class:`Draw` for a number, a choice, a text or bytes, one field at a time.
``secmon bench fuzz`` answers with :class:`RandomDraw`, a seeded :class:`random.Random`, as fast
as Python goes; the tests answer with Hypothesis (``tests/fuzz/drawing.py``), which then picks
edge values for each field, replays a failure and shrinks it field by field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from random import Random
from typing import TypeVar

T = TypeVar("T")


class Draw(ABC):
    """The choices a generator makes; subclasses say where they come from."""

    @abstractmethod
    def integer(self, low: int, high: int) -> int:
        """An integer from ``low`` to ``high``, both included."""

    @abstractmethod
    def chance(self, probability: float) -> bool:
        """True about ``probability`` of the time."""

    @abstractmethod
    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""

    @abstractmethod
    def text(self, alphabet: str, shortest: int, longest: int) -> str:
        """Characters of ``alphabet``, ``shortest`` to ``longest`` of them."""

    @abstractmethod
    def binary(self, shortest: int, longest: int) -> bytes:
        """Any bytes, ``shortest`` to ``longest`` of them."""

    @abstractmethod
    def floating(self, low: float, high: float) -> float:
        """A finite float from ``low`` to ``high``."""

    def bits(self, count: int) -> int:
        """An integer of ``count`` random bits."""
        return self.integer(0, (1 << count) - 1)


class RandomDraw(Draw):
    """Choices from a :class:`random.Random`: seeded, the same seed makes the same inputs."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def choice(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def text(self, alphabet: str, shortest: int, longest: int) -> str:
        return "".join(self.rng.choices(alphabet, k=self.rng.randint(shortest, longest)))

    def binary(self, shortest: int, longest: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(shortest, longest))

    def floating(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def bits(self, count: int) -> int:
        return self.rng.getrandbits(count)
