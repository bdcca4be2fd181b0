"""Who may send a claimed e-mail: a sender's key, held as a PostgreSQL advisory lock, and when
the rows of a sender whose session is gone go back to the queue.

A sender claims rows under its key (``claimed_by``) and holds the key as a lock on one
session. The rules that make "sent again after a crash, never twice by two live senders" hold:

1. **A new key for every session.** When the session drops (a database blip, a restart of
   PostgreSQL, ``pg_terminate_backend``) the lock goes with it. Taking the same key back on
   the new session made the old rows look owned by a live sender forever; a fresh key leaves
   them recognisably orphaned.
2. **A sender stops when its session goes**: ``SenderIdentity.watch`` notices a closed
   session at once and a silent one within ``PROBE_S + PROBE_TIMEOUT_S`` (a probe query), and
   raises ``SessionLost``; the sender then hands nothing new to SMTP, lets each send under way
   end (at most ``SMTP_TIMEOUT_S``) and records it, then takes a new session and key.
3. **Its own old rows it requeues at once** after that (it knows nothing of them is under
   way), **anyone else's only after ``orphan_grace_s``** (``Orphans``): the other sender may
   be alive, still finishing the send it had under way when its session dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import NoReturn

import asyncpg

from sto_notifications.repository import SENDER_LOCK_CLASS
from stolive_shared.db import CONNECTION_ERRORS

# How often the session holding the key is asked whether it still answers, and how long it
# may take: a session that went silent (no reset, no close) is given up after both.
PROBE_S = 1.0
PROBE_TIMEOUT_S = 2.0


class SessionLost(ConnectionError):
    """The session holding this sender's key is gone: its claims are no longer its own."""


class SenderIdentity:
    """A key held as a PostgreSQL advisory lock on one session, new for every session."""

    def __init__(self) -> None:
        self.key = 0
        # Keys this process held before and stopped all work under: requeued without a wait.
        self.previous: set[int] = set()
        self._session: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    async def hold(self, conn: asyncpg.Connection) -> None:
        """Take a key no live session holds, on ``conn``, and watch that session."""
        if self.key:
            self.previous.add(self.key)
        key = random.randint(1, 2**31 - 1)
        while not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", SENDER_LOCK_CLASS, key
        ):
            key = random.randint(1, 2**31 - 1)
        self.key = key
        self._session = conn
        lost = self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())

    @property
    def alive(self) -> bool:
        """False once the session holding the key is known to be gone: send nothing more
        under it. (A sender only drained, never run, holds no key and is always alive.)"""
        return self._session is None or not self._lost.is_set()

    def check(self) -> None:
        if not self.alive:
            raise SessionLost(f"the session holding sender key {self.key} is gone")

    async def watch(self) -> NoReturn:
        """Raise ``SessionLost`` when the session closes or stops answering its probe."""
        session = self._session
        assert session is not None, "hold() first"
        while not self._lost.is_set():
            # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 a cancellation that meets
            # the timeout in ``wait_for`` can be swallowed, and a stop would never end.
            try:
                async with asyncio.timeout(PROBE_S):
                    await self._lost.wait()
            except TimeoutError:
                if not await _answers(session):
                    self._lost.set()
        # A silent session may still hold the lock: end it, so the key is free for sure.
        session.terminate()
        raise SessionLost(f"the session holding sender key {self.key} is gone")


async def _answers(session: asyncpg.Connection) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await session.fetchval("SELECT 1")
    except TimeoutError:
        return False
    except CONNECTION_ERRORS:
        return False
    return True


class Orphans:
    """Which dead senders' rows may be requeued now: those first seen dead ``grace_s`` ago,
    and this process's own earlier keys at once."""

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace_s = grace_s
        self._clock = clock
        self._first_seen: dict[int, float] = {}

    def due(self, dead: set[int], own_previous: set[int]) -> list[int]:
        now = self._clock()
        self._first_seen = {key: self._first_seen.get(key, now) for key in dead}
        return sorted(
            key
            for key, seen in self._first_seen.items()
            if key in own_previous or now - seen >= self._grace_s
        )
