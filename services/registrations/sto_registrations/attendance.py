"""What a registrant's manage page says after the event: whether they attended (live or by
replay) and whether their certificate is ready. Pure. Analytics decides attendance and issues
certificates; this service keeps what its ``attendance.recorded`` messages said.

A later message never takes back what an earlier one gave: a certificate, once issued, stays
(until the person's data goes), and live attendance is not overwritten by a replay record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

AttendedAs = Literal["live", "replay"]


@dataclass(frozen=True)
class Attendance:
    registration_id: uuid.UUID
    attended_as: AttendedAs | None
    certificate: bool
    minutes_live: float
    minutes_replay: float


def merged(known: Attendance | None, news: Attendance) -> Attendance:
    """The attendance after a message: what was given stays, minutes only grow."""
    if known is None:
        return news
    return Attendance(
        registration_id=news.registration_id,
        attended_as=known.attended_as if known.attended_as == "live" else news.attended_as,
        certificate=known.certificate or news.certificate,
        minutes_live=max(known.minutes_live, news.minutes_live),
        minutes_replay=max(known.minutes_replay, news.minutes_replay),
    )
