"""Beacons from the watch page's player, keyed by event id.

Beacons are produced straight to Kafka (no outbox: a beacon is not a business fact PostgreSQL
must keep, and the player retries on 503). ``viewer_id`` is opaque: a registration's join-link
id or an anonymous id the browser made; no personal data.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import VIEWER_ACTIVITY

BeaconAction = Literal["join", "heartbeat", "leave"]


class ViewerBeacon(Message):
    TOPIC: ClassVar[str] = VIEWER_ACTIVITY.name
    type: Literal["viewer.beacon"] = "viewer.beacon"
    version: Literal[1] = 1
    event_id: uuid.UUID
    viewer_id: str
    action: BeaconAction
    mode: Literal["live", "replay"]
    client_ts: AwareDatetime
    received_at: AwareDatetime

    def partition_key(self) -> str:
        return str(self.event_id)


VIEWER_MESSAGES: tuple[type[Message], ...] = (ViewerBeacon,)
