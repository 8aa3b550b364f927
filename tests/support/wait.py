"""Waiting for something to happen: a probe polled until its value will do, or a failure saying what never came.

Instead of ``sleep(0.3)`` and hoping the work is done by then: the test goes on as soon as it is,
and a slow machine only makes the test slower, not wrong. The timeouts are generous on purpose:
they only bound how long a broken test hangs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 60.0  # seconds
INTERVAL = 0.1  # seconds between two looks


def _failure(what: str | Callable[[], str], timeout: float, last: object) -> str:
    described = what() if callable(what) else what
    return f"waited {timeout:g} s for {described}; the last value seen was {last!r}"


async def until(
    probe: Callable[[], T | Awaitable[T]],
    what: str | Callable[[], str],
    *,
    done: Callable[[T], object] = bool,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """The first value of ``probe`` (awaited when it is a coroutine) for which ``done`` is true.

    ``what`` says what is awaited (a callable is asked only on failure, e.g. to quote a log);
    after ``timeout`` seconds the test fails with it and the last value ``probe`` gave.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        last: T = await value if inspect.isawaitable(value) else value  # type: ignore[assignment]
        if done(last):
            return last
        if loop.time() >= deadline:
            raise AssertionError(_failure(what, timeout, last))
        await asyncio.sleep(interval)


async def until_at_least(counter: Callable[[], float], minimum: float, what: str, *, timeout: float = TIMEOUT) -> float:
    """Wait for ``counter`` (a telemetry counter, a stats field) to reach ``minimum``; its value then."""
    return await until(counter, f"{what} to reach {minimum:,g}", done=lambda value: value >= minimum, timeout=timeout)


def wait_until(
    probe: Callable[[], T],
    what: str | Callable[[], str],
    *,
    done: Callable[[T], object] = bool,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """:func:`until` for tests without an event loop (a subprocess polled over HTTP, a port)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if done(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, timeout, last))
        time.sleep(interval)
