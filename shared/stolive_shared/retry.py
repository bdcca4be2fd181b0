"""Waiting between attempts at something that failed for a reason outside our control (the
broker or the database away): waits that double from ``first`` to at most ``most``, each
announced in the log, and back to ``first`` once an attempt has worked.

Every loop of the platform that retries uses this one, so a worker that has lost PostgreSQL
backs off and reports the same way everywhere.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Backoff:
    """0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s, …; ``reset`` after a success."""

    def __init__(self, first: float = 0.5, most: float = 5.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    async def wait(self, what: str, error: BaseException) -> None:
        """Log ``what`` happened (and the error), wait, and make the next wait longer."""
        log.warning("%s (retry in %.1fs): %r", what, self.delay, error)
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.most)

    def reset(self) -> None:
        self.delay = self.first
