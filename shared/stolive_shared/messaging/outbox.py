"""Write a message to the outbox, inside the caller's transaction.

Nothing is published from a request or a transaction: the row commits with the change that
caused it, and the relay (``relay.py``) publishes it afterwards. The current trace context is
stored with the row so the trace continues through Kafka.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import asyncpg

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import encode
from stolive_shared.telemetry import current_trace_headers


def wakeup_channel(schema: str) -> str:
    return f"outbox_{schema}"


class OutboxRow(NamedTuple):
    message_id: uuid.UUID
    topic: str
    key: str
    headers: dict[str, str]
    payload: bytes


def outbox_row(message: Message, trace_headers: dict[str, str]) -> OutboxRow:
    """``message`` as the outbox stores it: its contract headers plus the trace to continue."""
    value, headers = encode(message)
    header_map = {key: raw.decode() for key, raw in headers}
    header_map.update(trace_headers)
    return OutboxRow(message.message_id, message.TOPIC, message.partition_key(), header_map, value)


async def enqueue(conn: asyncpg.Connection, message: Message, *, schema: str) -> None:
    """Add ``message`` to the outbox; the caller must be inside a transaction."""
    await enqueue_many(conn, [message], schema=schema)


async def enqueue_many(conn: asyncpg.Connection, messages: list[Message], *, schema: str) -> None:
    if not messages:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("the outbox is written inside the transaction that makes the change")
    trace_headers = current_trace_headers()
    rows = [outbox_row(message, trace_headers) for message in messages]
    await conn.executemany(
        "INSERT INTO outbox (message_id, topic, key, headers, payload) VALUES ($1, $2, $3, $4, $5)",
        rows,
    )
    # Delivered at commit; wakes the relay without waiting for its poll.
    await conn.execute("SELECT pg_notify($1, '')", wakeup_channel(schema))
