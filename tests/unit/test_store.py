"""The in-memory store behaves as a transaction does: all of a block's changes, or none."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from stolive_shared.store import InMemoryStore


@dataclass
class Shelf:
    books: list[str] = field(default_factory=list)


@dataclass
class Shelves:
    shelf: Shelf

    def add(self, title: str) -> None:
        self.shelf.books.append(title)


def store() -> InMemoryStore[Shelf, Shelves]:
    return InMemoryStore(Shelf(), Shelves)


async def test_a_block_that_ends_well_commits_its_changes() -> None:
    shelves = store()
    async with shelves.transaction() as repository:
        repository.add("Techniek in de regio")
    async with shelves.reading() as repository:
        assert repository.shelf.books == ["Techniek in de regio"]


async def test_a_block_that_raises_leaves_nothing_behind() -> None:
    shelves = store()

    async def add_then_fail() -> None:
        async with shelves.transaction() as repository:
            repository.add("half geschreven")
            raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError):
        await add_then_fail()
    async with shelves.reading() as repository:
        assert repository.shelf.books == []


async def test_transactions_run_one_at_a_time() -> None:
    shelves = store()

    async def add_after_a_pause(title: str) -> None:
        async with shelves.transaction() as repository:
            seen = len(repository.shelf.books)
            await asyncio.sleep(0)  # another transaction would interleave here
            repository.add(f"{title} na {seen}")

    await asyncio.gather(add_after_a_pause("a"), add_after_a_pause("b"))
    async with shelves.reading() as repository:
        assert repository.shelf.books == ["a na 0", "b na 1"]
