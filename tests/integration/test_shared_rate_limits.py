"""Abuse limits in PostgreSQL: every replica draws on one budget per key, a rush costs one
round trip per batch, and a refused take is not counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest

from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.ratelimit import Limit, SharedLimits, Take

SCHEMA = "limits_test"
SIGN_UP = Limit("sign-up", per_minute=60, burst=5)


class CountingPool:
    """A pool that counts the round trips made through it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.calls = 0

    async def fetch(self, *args: Any) -> Any:
        self.calls += 1
        return await self.pool.fetch(*args)

    async def execute(self, *args: Any) -> Any:
        self.calls += 1
        return await self.pool.execute(*args)


@pytest.fixture(scope="module")
async def pools(database_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools on one schema: two replicas of a service."""
    await apply_migrations(database_url, SCHEMA, [])
    made = [await create_pool(database_url, SCHEMA, max_size=3) for _ in range(2)]
    yield made
    for pool in made:
        await pool.close()


async def test_two_replicas_share_one_budget_per_address(pools: list[asyncpg.Pool]) -> None:
    first, second = SharedLimits(pools[0]), SharedLimits(pools[1])
    address = "203.0.113.10"
    waits = [
        await (first if n % 2 else second).retry_after(Take(SIGN_UP, address)) for n in range(8)
    ]
    assert waits[:5] == [0] * 5
    assert all(wait >= 1 for wait in waits[5:])
    assert await first.retry_after(Take(SIGN_UP, "198.51.100.20")) == 0  # its own budget


async def test_a_group_costs_one_per_person_and_a_refused_take_is_not_counted(
    pools: list[asyncpg.Pool],
) -> None:
    limits = SharedLimits(pools[0])
    address = "203.0.113.11"
    assert await limits.retry_after(Take(SIGN_UP, address, cost=4)) == 0
    assert await limits.retry_after(Take(SIGN_UP, address, cost=4)) >= 3  # 1 left: refused
    assert await limits.retry_after(Take(SIGN_UP, address, cost=1)) == 0  # the 1 is still there


async def test_a_rush_is_sent_in_a_few_round_trips_and_counted_exactly(
    pools: list[asyncpg.Pool],
) -> None:
    counting = CountingPool(pools[0])
    limits = SharedLimits(cast(asyncpg.Pool, counting))
    rush = Limit("rush", per_minute=1, burst=50)
    waits = await asyncio.gather(
        *(limits.retry_after(Take(rush, "203.0.113.12")) for _ in range(200))
    )
    calls = counting.calls
    assert sorted(waits)[:50] == [0] * 50
    assert all(wait > 0 for wait in sorted(waits)[50:])
    assert calls <= 5, f"{calls} round trips for 200 checks"


async def test_a_bucket_fills_again_at_its_rate(pools: list[asyncpg.Pool]) -> None:
    limits = SharedLimits(pools[0])
    quick = Limit("quick", per_minute=600, burst=1)  # one every 0.1 s
    assert await limits.retry_after(Take(quick, "a")) == 0
    assert await limits.retry_after(Take(quick, "a")) == 1

    async def admitted() -> bool:
        return await limits.retry_after(Take(quick, "a")) == 0

    for _ in range(200):  # a condition, not a sleep: at most 10 s on a loaded machine
        if await admitted():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the bucket never filled again")


async def test_a_switched_off_limit_never_touches_the_database(
    pools: list[asyncpg.Pool],
) -> None:
    off = Limit("off", per_minute=0, burst=0)
    limits = SharedLimits(pools[0])
    assert [await limits.retry_after(Take(off, "x")) for _ in range(100)] == [0] * 100
    async with pools[0].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM rate_limits WHERE scope = 'off'") == 0
