"""``secmon bench fuzz``: every parser that reads bytes from outside, under random input.

:mod:`.cases` makes valid inputs from fields (and knows what their parse must give back),
:mod:`.damage` breaks them, :mod:`.targets` says what must hold of any answer and lists the
parsers. The generators take their choices from a :class:`~.draw.Draw`: this runner gives them
a seeded :class:`random.Random` and draws as fast as Python goes, without the Hypothesis engine
(which costs far more per input, and a million inputs need no shrinking); ``tests/fuzz`` hands
them Hypothesis instead, so that a failing case there is replayed and shrunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random

from secmon.bench.fuzz.draw import RandomDraw
from secmon.bench.fuzz.targets import TARGETS, PropertyViolation, Target

__all__ = ["TARGETS", "FuzzResult", "PropertyViolation", "Target", "fuzz", "fuzz_target"]


@dataclass(frozen=True, slots=True)
class FuzzResult:
    """What one parser made of its inputs."""

    name: str
    description: str
    inputs: int
    seconds: float  # drawing and checking
    check_seconds: float  # of which parsing and checking what came out
    failures: int
    first_failure: str | None  # the input, and what went wrong with it
    unavailable: str | None = None  # why it did not run (no data files here)

    @property
    def inputs_per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    @property
    def checked_per_second(self) -> float:
        """Inputs parsed and checked per second, leaving out the time drawing them."""
        return self.inputs / self.check_seconds if self.check_seconds else 0.0


def fuzz_target(name: str, inputs: int, seed: int = 0) -> FuzzResult:
    """Draw ``inputs`` inputs for the parser ``name`` and check what it makes of each."""
    kind = TARGETS[name]
    draw = RandomDraw(Random(f"{seed}:{name}"))
    target = kind(draw)  # pools of valid inputs, files: not timed
    try:
        if target.unavailable is not None:
            return FuzzResult(name, kind.description, 0, 0.0, 0.0, 0, None, target.unavailable)
        failures = 0
        first: str | None = None
        checking = 0.0
        clock = time.perf_counter
        started = clock()
        for _ in range(inputs):
            item = target.draw(draw)
            check_started = clock()
            try:
                target.check(item)
            except PropertyViolation as violation:
                problem = str(violation)
            except Exception as error:  # what the bench is for: count what escapes a parser, and go on
                problem = f"{type(error).__name__} escaped: {error}"
            except BaseException as error:
                # Rust extensions (the evtx parser) raise PanicException, a BaseException.
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                problem = f"{type(error).__name__} escaped: {error}"
            else:
                continue
            finally:
                checking += clock() - check_started
            failures += 1
            if first is None:
                first = f"{target.show(item)}: {problem[:500]}"
        return FuzzResult(name, kind.description, inputs, clock() - started, checking, failures, first)
    finally:
        target.close()


def fuzz(
    names: Sequence[str], inputs: int, seed: int = 0, progress: Callable[[str], None] | None = None
) -> list[FuzzResult]:
    """:func:`fuzz_target` for each parser of ``names``, one after the other."""
    results = []
    for name in names:
        if progress is not None:
            progress(name)
        results.append(fuzz_target(name, inputs, seed))
    return results
