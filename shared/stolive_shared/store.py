"""Where a service keeps its state, as a port: a use case asks its ``Store`` for a transaction
and works with the service's repository bound to it; it never holds a connection itself.

``PostgresStore`` is the real store. ``InMemoryStore`` is the fake the use-case unit tests run
on: each transaction works on a copy of the state and puts it in place only when the block
ends without an error (a rollback is simply the copy thrown away), and transactions run one at
a time, which is what row locks guarantee the use cases. A service's contract test runs the
same cases against its PostgreSQL and in-memory repositories, so the fake cannot drift.
"""

from __future__ import annotations

import asyncio
import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

import asyncpg

R = TypeVar("R")  # a service's repository
S = TypeVar("S")  # the in-memory state a fake repository works on


class Store(ABC, Generic[R]):
    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[R]:
        """A repository whose changes commit together when the block ends without an error."""

    @abstractmethod
    def reading(self) -> AbstractAsyncContextManager[R]:
        """A repository for reads outside a transaction (each read sees the latest commit)."""


class PostgresStore(Store[R]):
    def __init__(self, pool: asyncpg.Pool, repository: Callable[[asyncpg.Connection], R]) -> None:
        self.pool = pool
        self._repository = repository

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[R]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield self._repository(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[R]:
        async with self.pool.acquire() as conn:
            yield self._repository(conn)


class InMemoryStore(Store[R], Generic[S, R]):
    def __init__(self, state: S, repository: Callable[[S], R]) -> None:
        self.state = state
        self._repository = repository
        self._one_at_a_time = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[R]:
        async with self._one_at_a_time:
            draft = copy.deepcopy(self.state)
            yield self._repository(draft)
            self.state = draft

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[R]:
        yield self._repository(copy.deepcopy(self.state))
