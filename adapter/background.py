"""Background tasks that live exactly as long as a block: ``async with running(coro): ...``,
and the periodic job most of them are: ``every(seconds, job)``.

The one place for the start, cancel, await sequence that aiohttp's cleanup contexts, the model
server and the local cluster all need, so no task is ever fire-and-forget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running(coroutine: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coroutine`` as a task during the block; on leaving, cancel it and wait for it."""
    task = asyncio.ensure_future(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def every(seconds: float, job: Callable[[], object]) -> None:
    """Run ``job`` every ``seconds``, first after one period, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        job()
