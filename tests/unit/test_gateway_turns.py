"""The gateway's queue in front of a service: actions first, pages never starved, no turn lost."""

from __future__ import annotations

import asyncio

from stolive.turns import Turns, is_action


async def _queue_up(turns: Turns, kinds: str, served: list[str]) -> list[asyncio.Task[None]]:
    """One waiter per letter ('a' an action, 'p' a page, numbered in arrival order); each notes
    when it got its turn. Returns once every waiter is in the queue."""

    async def wait(name: str) -> None:
        await turns.acquire(action=name.startswith("a"))
        served.append(name)

    tasks = []
    for n, kind in enumerate(kinds):
        tasks.append(asyncio.create_task(wait(f"{kind}{n}")))
        await asyncio.sleep(0)  # arrives after the one before
    await asyncio.sleep(0)
    return tasks


async def _hand_over(turns: Turns, times: int) -> None:
    for _ in range(times):
        turns.release()
        await asyncio.sleep(0)


def test_only_changing_methods_are_actions() -> None:
    assert [is_action(m) for m in ("POST", "put", "PATCH", "DELETE")] == [True] * 4
    assert [is_action(m) for m in ("GET", "head", "OPTIONS")] == [False] * 3


async def test_free_turns_are_taken_at_once_and_then_requests_wait() -> None:
    turns = Turns(2)
    await turns.acquire(action=False)
    await turns.acquire(action=True)
    served: list[str] = []
    await _queue_up(turns, "p", served)
    assert served == []
    await _hand_over(turns, 1)
    assert served == ["p0"]


async def test_a_sent_form_goes_before_the_pages_that_were_waiting_longer() -> None:
    turns = Turns(1)
    await turns.acquire(action=False)
    served: list[str] = []
    await _queue_up(turns, "pppaa", served)
    await _hand_over(turns, 5)
    assert served == ["a3", "a4", "p0", "p1", "p2"]


async def test_pages_get_every_fourth_turn_while_actions_keep_waiting() -> None:
    turns = Turns(1)
    await turns.acquire(action=False)
    served: list[str] = []
    await _queue_up(turns, "pp" + "a" * 8, served)
    await _hand_over(turns, 10)
    assert served == ["a2", "a3", "a4", "p0", "a5", "a6", "a7", "p1", "a8", "a9"]


async def test_a_waiter_that_gives_up_takes_no_turn() -> None:
    turns = Turns(1)
    await turns.acquire(action=False)
    served: list[str] = []
    tasks = await _queue_up(turns, "ap", served)
    tasks[0].cancel()  # the action's queue timeout ran out
    await asyncio.sleep(0)
    await _hand_over(turns, 1)
    assert served == ["p1"]


async def test_a_turn_handed_over_as_its_waiter_gives_up_goes_to_the_next() -> None:
    turns = Turns(1)
    await turns.acquire(action=False)
    served: list[str] = []
    tasks = await _queue_up(turns, "ap", served)
    turns.release()  # handed to a0 ...
    tasks[0].cancel()  # ... which times out before it could run
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert served == ["p1"]
    turns.release()
    await turns.acquire(action=True)  # the one turn is free again: nothing leaked
    assert not tasks[1].cancelled()
