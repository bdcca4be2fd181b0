"""How a sender's lanes (one per SMTP connection) run side by side and stop: every send under
way ends and is recorded before a stop returns, and accepted mailing recipients are marked
sent in groups without letting any lane run ahead of its own mark (see ``sending.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


async def finish_despite_cancellation(work: Coroutine[Any, Any, None], grace_s: float) -> None:
    """Run ``work`` (one send and the record of its outcome) to its end even when our task is
    cancelled meanwhile, waiting at most ``grace_s``; the cancellation is re-raised after.

    Told to stop again while waiting (``all_of`` cancels every part once one has stopped),
    it still waits: giving up there let the process close its pool under the send."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while not task.done() and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=left)
        # Still under way: cut it off (before its final dot the server drops the message), so
        # nothing of this sender outlives the grace another sender waits (claims.py).
        task.cancel()
        raise


async def all_of(*work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` side by side; when one part fails or we are cancelled, cancel the rest and
    wait until every part has ended (``gather`` returns at the first cancelled part, while
    another may still be finishing a send) before passing the error on. Cancelled again while
    waiting (an ``all_of`` around this one cancels its parts too), it still waits: the parts
    end by themselves (``finish_despite_cancellation`` bounds each send), and what follows a
    stop (releasing the connection that writes marks) must not run under their feet."""
    tasks = [asyncio.ensure_future(part) for part in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        while not all(task.done() for task in tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(tasks)
        raise


class GroupedMarks:
    """Accepted recipients marked sent in groups, one UPDATE at a time and no timer: whoever
    finds its id still pending writes every pending id, the others find theirs written. A
    lane waits here before it sends again, so no connection has two acceptances unrecorded."""

    def __init__(self, write: Callable[[list[uuid.UUID]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[uuid.UUID] = []
        self._lock = asyncio.Lock()
        # Accepted, but the write failed (PostgreSQL went away): recorded on the next drain.
        self.unwritten: list[uuid.UUID] = []

    async def record(self, recipient_id: uuid.UUID) -> None:
        self._pending.append(recipient_id)
        async with self._lock:
            if recipient_id not in self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await self._write(batch)
            except BaseException:
                self.unwritten.extend(batch)
                raise
