"""What the tests of an unattended platform share (dead letters, metrics, relay leadership)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from stolive_shared.contracts.events import EventPublished, EventSnapshot


def published() -> EventPublished:
    """A new event's publication, two days ahead."""
    starts = datetime.now(UTC) + timedelta(days=2)
    return EventPublished.create(
        event=EventSnapshot(
            event_id=uuid.uuid4(), revision=2, kind="webinar", status="published",
            title="STO LIVE", starts_at=starts, ends_at=starts + timedelta(hours=1),
        )
    )  # fmt: skip


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
