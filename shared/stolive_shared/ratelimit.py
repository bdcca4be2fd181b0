"""Abuse limits kept in PostgreSQL, so every replica of a service draws on the same budget.

A ``Limit`` is a token bucket: ``burst`` at once, then ``per_minute`` a minute, per key (a
client address, a form token). Buckets live in the service's ``rate_limits`` table and are
changed by one function (``rate_limit_take``, shared migration 0002), so three replicas of an
API allow what one does. The checks that arrive while one is under way are sent together, one
round trip for a whole rush of sign-ups.

The client address is the one the trusted proxies report: uvicorn rewrites ``scope["client"]``
from ``X-Forwarded-For`` only when the connection comes from ``FORWARDED_ALLOW_IPS``; a
header from anyone else is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field

import asyncpg
from starlette.types import Scope

from stolive_shared.db import CONNECTION_ERRORS

# Rows not touched for this long are full buckets again, or as good as: they are deleted.
_FORGET_AFTER_S = 24 * 3600.0
_TIDY_EVERY_S = 300.0


def client_address(scope: Scope) -> str:
    """The caller's address as the trusted proxies report it (see the module docstring)."""
    client = scope.get("client")
    return str(client[0]) if client else "onbekend"


@dataclass(frozen=True)
class Limit:
    """``burst`` at once, then ``per_minute`` a minute; ``per_minute`` 0 switches it off."""

    scope: str
    per_minute: float
    burst: float

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0


@dataclass(frozen=True)
class Take:
    limit: Limit
    key: str
    cost: float = 1.0


@dataclass
class _Pending:
    takes: list[Take]
    answer: asyncio.Future[int]


@dataclass
class SharedLimits:
    """Token buckets in the service's schema, shared by every process on it."""

    pool: asyncpg.Pool
    _pending: list[_Pending] = field(default_factory=list)
    _flight: asyncio.Task[None] | None = None
    _tidied_at: float = field(default_factory=time.monotonic)

    async def retry_after(self, *takes: Take) -> int:
        """0 when every take fits (each is then taken), else whole seconds to wait; a take
        that does not fit is not counted."""
        wanted = [take for take in takes if take.limit.enabled]
        if not wanted:
            return 0
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(wanted, answer))
        if self._flight is None or self._flight.done():
            self._flight = asyncio.create_task(self._send())
        return await answer

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            entries = sorted(
                (
                    (take.limit.scope, take.key, index, take)
                    for index, pending in enumerate(batch)
                    for take in pending.takes
                ),
                key=lambda entry: (entry[0], entry[1]),  # one lock order for every replica
            )
            try:
                rows = await self.pool.fetch(
                    "SELECT ordinal, wait_s FROM rate_limit_take($1, $2, $3, $4, $5)",
                    [scope for scope, _, _, _ in entries],
                    [key for _, key, _, _ in entries],
                    [take.cost for _, _, _, take in entries],
                    [take.limit.burst for _, _, _, take in entries],
                    [take.limit.per_minute / 60.0 for _, _, _, take in entries],
                )
            except Exception as exc:  # each caller gets the error: 503 where it is an outage
                for pending in batch:
                    if not pending.answer.done():
                        pending.answer.set_exception(exc)
                continue
            waits = [0.0] * len(batch)
            for row in rows:
                index = entries[row["ordinal"] - 1][2]
                waits[index] = max(waits[index], float(row["wait_s"]))
            for pending, wait in zip(batch, waits, strict=True):
                if not pending.answer.done():
                    pending.answer.set_result(math.ceil(wait) if wait > 0 else 0)
        await self._tidy()

    async def _tidy(self) -> None:
        """Now and then, forget buckets nobody has touched for a day (they are full)."""
        if time.monotonic() - self._tidied_at < _TIDY_EVERY_S:
            return
        self._tidied_at = time.monotonic()
        with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
            await self.pool.execute(
                "DELETE FROM rate_limits WHERE updated_at < now() - make_interval(secs => $1)",
                _FORGET_AFTER_S,
            )
