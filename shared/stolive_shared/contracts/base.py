"""The envelope every message shares.

``message_id`` has no default on purpose: a default factory would mint a fresh id whenever an
old message is parsed again, and duplicate detection (``processed_messages``) would break.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict


class Message(BaseModel):
    """A versioned, immutable Kafka message. Subclasses fix ``type`` and ``version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TOPIC: ClassVar[str]

    message_id: uuid.UUID
    type: str
    version: int
    occurred_at: AwareDatetime

    @classmethod
    def create(cls, **fields: Any) -> Self:
        """A message made now (not parsed): a fresh id and the current time."""
        return cls(message_id=uuid.uuid4(), occurred_at=datetime.now(UTC), **fields)

    def partition_key(self) -> str:
        """The Kafka key: the id the consumers group by (usually the event id)."""
        raise NotImplementedError
