"""Hard and soft bounces, counted as listmonk counts them, and when they suppress an address.

The bounce this service hears today is the SMTP reply at send time (the relay or the
recipient's server answering RCPT or DATA). A 5xx is a hard bounce: the address is refused for
good, and one is enough to stop mailing it (``hard_limit`` 1). A 4xx is a soft bounce only
when it is still the answer after every retry (mailbox full, greylisting that never lets go):
a few of those within a window (3 in 30 days) suppress too, one does not. No answer at all
(refused connection, timeout) is trouble on our side of the wire, never the recipient's: it
is retried and, when it finally fails, counts as no bounce.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

BounceKind = Literal["hard", "soft"]


def classify(smtp_code: int | None, *, last_attempt: bool) -> BounceKind | None:
    """What a refusal says about the address: hard, soft, or nothing (yet)."""
    if smtp_code is None:
        return None
    if 500 <= smtp_code < 600:
        return "hard"
    if 400 <= smtp_code < 500 and last_attempt:
        return "soft"
    return None


@dataclass(frozen=True)
class BouncePolicy:
    """How many bounces of each kind within ``window`` suppress an address."""

    hard_limit: int = 1
    soft_limit: int = 3
    window: timedelta = timedelta(days=30)

    def suppresses(self, hard: int, soft: int) -> bool:
        return hard >= self.hard_limit or soft >= self.soft_limit
