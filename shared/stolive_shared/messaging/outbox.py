"""Write a message to the outbox, inside the caller's transaction.

Nothing is published from a request or a transaction: the row commits with the change that
caused it, and the relay (``relay.py``) publishes it afterwards. The current trace context is
stored with the row so the trace continues through Kafka.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


@dataclass
class OutboxColumns:
    """Messages as outbox rows, column by column: what the one INSERT (``insert_sql``) reads.
    A statement that stores something and its messages at once (registrations' sign-up batch)
    writes them with it, as ``enqueue_many`` does."""

    message_ids: list[uuid.UUID] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # JSON objects
    payloads: list[bytes] = field(default_factory=list)

    @classmethod
    def of(
        cls, messages: Sequence[Message], trace_headers: Sequence[dict[str, str]]
    ) -> OutboxColumns:
        """``messages``, each with the trace headers of what caused it."""
        columns = cls()
        for message, trace in zip(messages, trace_headers, strict=True):
            row = outbox_row(message, trace)
            columns.message_ids.append(row.message_id)
            columns.topics.append(row.topic)
            columns.keys.append(row.key)
            columns.headers.append(json.dumps(row.headers))
            columns.payloads.append(row.payload)
        return columns

    def arguments(self) -> tuple[Any, ...]:
        return (self.message_ids, self.topics, self.keys, self.headers, self.payloads)


def insert_sql(first: int) -> str:
    """The one INSERT into the outbox, its columns as parameters ``$first`` to ``$first+4``;
    rows keep their order (the relay publishes in id order)."""
    numbers = range(first, first + 5)
    m, t, k, h, p = (f"${n}" for n in numbers)
    return f"""INSERT INTO outbox (message_id, topic, key, headers, payload)
        SELECT m.message_id, m.topic, m.key, m.headers::jsonb, m.payload
        FROM unnest({m}::uuid[], {t}::text[], {k}::text[], {h}::text[], {p}::bytea[])
             WITH ORDINALITY AS m(message_id, topic, key, headers, payload, n)
        ORDER BY m.n"""


async def enqueue_many(conn: asyncpg.Connection, messages: list[Message], *, schema: str) -> None:
    if not messages:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("the outbox is written inside the transaction that makes the change")
    trace_headers = current_trace_headers()
    columns = OutboxColumns.of(messages, [trace_headers] * len(messages))
    await conn.execute(insert_sql(1), *columns.arguments())
    # Delivered at commit; wakes the relay without waiting for its poll.
    await conn.execute("SELECT pg_notify($1, '')", wakeup_channel(schema))
