"""How a polling source stops: it is told to finish, given its grace period, then cancelled."""

from __future__ import annotations

import asyncio
import contextlib

from secmon.log import get_logger

log = get_logger(__name__)


async def finish_within(
    task: asyncio.Task[None] | None, stopping: asyncio.Event, grace: float, *, component: str, cut_short: str
) -> None:
    """Set ``stopping`` so ``task`` ends after its current read; cancel it if ``grace`` seconds pass first.

    ``cut_short`` is logged when the grace ran out: what the source had not read yet is read
    at the next start, from its checkpoint, with the same document ids.
    """
    if task is None:
        return
    stopping.set()
    await asyncio.wait([task], timeout=grace)
    if not task.done():
        log.info(cut_short, component=component, grace=grace)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
