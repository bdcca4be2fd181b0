"""The group-commit engine of sign-ups, on a commit that only records what it was given: what
arrives while a batch commits goes in the next, a person is never in two batches at once, a
batch one request spoils is split, a batch whose rows changed is decided again under lock."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sto_registrations.domain import Applicant
from sto_registrations.service.batching import Flight, SignUpBatcher, SignUpRequest

EVENT = uuid.uuid4()


class BadRow(Exception):
    """One request's data the database refuses."""


class RowsChanged(Exception):
    """The events' rows were not as the batch decided."""


class Commits:
    """A commit that answers each sign-up with its address, and can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], bool]] = []
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.refuse: set[str] = set()
        self.changed_once = False

    async def __call__(
        self, requests: list[SignUpRequest], flight: Flight, locked: bool
    ) -> list[str | Exception]:
        emails = [r.applicant.email for r in requests]
        self.batches.append((emails, locked))
        flight.planned.set()
        flight.stored.set()
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.refuse & set(emails):
            raise BadRow(sorted(self.refuse & set(emails)))
        if self.changed_once:
            self.changed_once = False
            raise RowsChanged
        return list(emails)


def request(email: str, event: uuid.UUID = EVENT) -> SignUpRequest:
    return SignUpRequest(event, Applicant("Naam", email, "", "docent", None))


@pytest.fixture
def commits() -> Commits:
    return Commits()


@pytest.fixture
def batcher(commits: Commits) -> SignUpBatcher[str]:
    return SignUpBatcher(commits, split_on=(BadRow,), retry_on=(RowsChanged,))


async def test_a_lone_sign_up_is_committed_at_once_in_a_batch_of_its_own(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    assert await batcher.submit([request("a@x.nl")]) == ["a@x.nl"]
    assert commits.batches == [(["a@x.nl"], False)]
    await batcher.close()


async def test_what_arrives_while_a_batch_commits_forms_the_next_in_arrival_order(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    batcher.depth = 1  # one batch per event at a time: the rest must wait for it
    commits.hold = asyncio.Event()
    first = asyncio.create_task(batcher.submit([request("a@x.nl")]))
    await commits.started.wait()
    rest = [asyncio.create_task(batcher.submit([request(f"{n}@x.nl")])) for n in "bcd"]
    await asyncio.sleep(0)
    commits.hold.set()
    assert await first == ["a@x.nl"]
    assert [await task for task in rest] == [["b@x.nl"], ["c@x.nl"], ["d@x.nl"]]
    assert [emails for emails, _ in commits.batches] == [["a@x.nl"], ["b@x.nl", "c@x.nl", "d@x.nl"]]
    await batcher.close()


async def test_one_persons_sign_up_for_an_event_is_never_in_two_batches_at_once(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    commits.hold = asyncio.Event()
    first = asyncio.create_task(batcher.submit([request("a@x.nl")]))
    await commits.started.wait()
    again = asyncio.create_task(batcher.submit([request("a@x.nl")]))
    other = asyncio.create_task(batcher.submit([request("b@x.nl")]))
    await asyncio.sleep(0.01)
    assert len(commits.batches) == 1, "a's second sign-up waits for a's first (and b behind it)"
    commits.hold.set()
    await asyncio.gather(first, again, other)
    # The event's sign-ups keep their order: b, who came after a's second, waits with it.
    assert [emails for emails, _ in commits.batches] == [["a@x.nl"], ["a@x.nl", "b@x.nl"]]
    await batcher.close()


async def test_a_batch_one_request_spoils_is_split_so_only_that_sign_up_fails(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    commits.hold = asyncio.Event()
    blocker = asyncio.create_task(batcher.submit([request("z@x.nl", uuid.uuid4())]))
    await commits.started.wait()
    commits.refuse = {"bad@x.nl"}
    batcher.max_in_flight = 1
    group = asyncio.create_task(
        batcher.submit([request("a@x.nl"), request("bad@x.nl"), request("c@x.nl")])
    )
    await asyncio.sleep(0)
    commits.hold.set()
    await blocker
    answers = await group
    assert answers[0] == "a@x.nl"
    assert isinstance(answers[1], BadRow)
    assert answers[2] == "c@x.nl"
    await batcher.close()


async def test_a_batch_whose_rows_changed_is_decided_again_under_their_lock(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    commits.changed_once = True
    assert await batcher.submit([request("a@x.nl")]) == ["a@x.nl"]
    assert commits.batches == [(["a@x.nl"], False), (["a@x.nl"], True)]
    await batcher.close()


async def test_closing_answers_the_sign_ups_already_taken_then_takes_no_more(
    batcher: SignUpBatcher[str], commits: Commits
) -> None:
    commits.hold = asyncio.Event()
    taken = asyncio.create_task(batcher.submit([request("a@x.nl")]))
    await commits.started.wait()
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0)
    assert not closing.done()
    commits.hold.set()
    await closing
    assert await taken == ["a@x.nl"]
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit([request("b@x.nl")])
