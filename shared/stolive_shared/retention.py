"""Personal data kept no longer than the privacy statement says.

Each service names its rules (``RetentionRule``: one batch of what has passed its period,
removed in a transaction of its own); ``RetentionJob`` runs them every
``retention_interval_s``, as a background worker or from a Faust timer, and counts what went
in the log and in ``stolive_retention_removed_total``. Several processes may run it at once:
a rule's batch locks the rows it takes (``FOR UPDATE SKIP LOCKED``), so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.metrics import RETENTION_REMOVED
from stolive_shared.retry import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    """``apply(limit)`` removes at most ``limit`` records and says how many it removed."""

    name: str
    apply: Callable[[int], Awaitable[int]]


class RetentionJob:
    """Runs the rules, each until a batch comes back short, then waits for the next round."""

    name = "retention"

    def __init__(
        self, rules: Sequence[RetentionRule], interval_s: float, batch_size: int = 500
    ) -> None:
        self.rules = list(rules)
        self.interval_s = interval_s
        self.batch_size = batch_size

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.run_once()
            except CONNECTION_ERRORS as exc:
                await backoff.wait("retention lost PostgreSQL", exc)
                continue
            backoff.reset()
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> dict[str, int]:
        """One round of every rule; how many records each removed."""
        removed: dict[str, int] = {}
        for rule in self.rules:
            total = 0
            while True:
                done = await rule.apply(self.batch_size)
                total += done
                if done < self.batch_size:
                    break
            if total:
                RETENTION_REMOVED.labels(rule.name).inc(total)
                log.info("retention: %s: %d", rule.name, total)
            removed[rule.name] = total
        return removed
