"""The time, as every service reads it: timezone-aware UTC, through a clock that tests move.

Use cases take a ``Clock`` (``utc_now`` unless a test gives its own), so a test can stand at
the moment a reminder falls due instead of sleeping until then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
