"""The gateway's queue in front of one service: a fixed number of turns, actions first.

In a rush most of the queue is page loads, and a person who has filled in the form and
pressed the button waits behind every page requested before the press: measured with 1,000
browsers, the sign-up POST then waited as long as the whole queue (p50 9 s). A turn that frees
up therefore goes to the oldest waiting *action* (any method but GET, HEAD and OPTIONS) before
the oldest waiting page, so a press is answered while pages queue. Pages are never starved: while
pages wait, every ``READS_EVERY``-th turn goes to a page, however many actions are waiting.

Within each kind the order is first come, first served; each hand-over costs constant time.
"""

from __future__ import annotations

import asyncio
from collections import deque

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# While pages wait, at least one turn in this many goes to a page.
READS_EVERY = 4


def is_action(method: str) -> bool:
    """A request that changes something: what a person sends after filling in a page."""
    return method.upper() not in SAFE_METHODS


class Turns:
    """``count`` turns; ``acquire`` waits for one, ``release`` hands it to the next waiter."""

    def __init__(self, count: int, reads_every: int = READS_EVERY) -> None:
        self._free = count
        self._reads_every = reads_every
        self._actions: deque[asyncio.Future[None]] = deque()
        self._pages: deque[asyncio.Future[None]] = deque()
        self._actions_in_a_row = 0

    async def acquire(self, action: bool) -> None:
        """Wait for a turn. Cancelled (a timeout), it takes none, or hands on one given to it
        at that very moment."""
        if self._free > 0:  # then nobody waits: a freed turn goes to a waiter first
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._actions if action else self._pages).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()
            raise

    def release(self) -> None:
        """Give a turn back: to the next waiter (see the module's docstring), else to the pool."""
        turn = self._next()
        if turn is None:
            self._free += 1
        else:
            turn.set_result(None)

    def _next(self) -> asyncio.Future[None] | None:
        for queue in (self._actions, self._pages):
            while queue and queue[0].done():  # left the queue (timed out)
                queue.popleft()
        pages_due = self._actions_in_a_row >= self._reads_every - 1
        if self._actions and not (self._pages and pages_due):
            self._actions_in_a_row += 1
            return self._actions.popleft()
        self._actions_in_a_row = 0
        return self._pages.popleft() if self._pages else None
