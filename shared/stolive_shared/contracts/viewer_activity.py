"""Beacons from the watch page's player, keyed by event id.

Beacons are produced straight to Kafka (no outbox: a beacon is not a business fact PostgreSQL
must keep, and the player retries on 503). ``viewer_id`` is opaque: a registration's join-link
id or an anonymous id the browser made; no personal data.

Version 2 adds ``position_s``: during a replay, where in the recording the player is (seconds
from its start), so watch minutes count distinct minutes of the recording; None live, and in
version 1 (``upcast_beacon_v1_v2``).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import VIEWER_ACTIVITY

BeaconAction = Literal["join", "heartbeat", "leave"]


class ViewerBeacon(Message):
    TOPIC: ClassVar[str] = VIEWER_ACTIVITY.name
    type: Literal["viewer.beacon"] = "viewer.beacon"
    version: Literal[2] = 2
    event_id: uuid.UUID
    viewer_id: str
    action: BeaconAction
    mode: Literal["live", "replay"]
    client_ts: AwareDatetime
    received_at: AwareDatetime
    position_s: float | None = Field(default=None, ge=0)

    def partition_key(self) -> str:
        return str(self.event_id)


def upcast_beacon_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no position in the recording: none known."""
    return {"position_s": None, **data}


VIEWER_MESSAGES: tuple[type[Message], ...] = (ViewerBeacon,)
