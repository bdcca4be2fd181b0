"""What the tests of an unattended platform share (dead letters, metrics, relay leadership)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar


class Loop(Protocol):
    async def run(self) -> Any: ...


L = TypeVar("L", bound=Loop)


@contextlib.asynccontextmanager
async def running(loop: L) -> AsyncIterator[L]:
    """``loop.run()`` as a task for the block, cancelled after it."""
    task = asyncio.create_task(loop.run())
    try:
        yield loop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
