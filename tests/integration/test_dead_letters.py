"""Dead letters: transient database conflicts are waited out, poison goes at once, and a letter
is replayed after a fix with `stolive dlq` and has its effect exactly once.

Real PostgreSQL (the conflicts are raised by the server, with their real SQLSTATE), the real
embedded broker, and the `stolive dlq` command run as an operator runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from pydantic import BaseModel

from stolive_shared.contracts.codec import header
from stolive_shared.contracts.events import EventPublished
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.messaging.consumer import Delivery, MessageConsumer
from stolive_shared.settings import KafkaSettings
from tests.integration import test_consumer_loop
from tests.integration.test_consumer_loop import published
from tests.support import eventually, produce_messages, read_topic

# A pool on this module's database with a table of effects: the consumer-loop tests' own.
pool = test_consumer_loop.pool


class Handler:
    """Records the effect of ``message``, after failing as told: ``conflicts`` times with a
    real PostgreSQL error of ``sqlstate``, or with ``broken`` while it is set. A new consumer
    group reads the topic from the start: other messages there are passed over."""

    def __init__(
        self, message: EventPublished, *, conflicts: int = 0, sqlstate: str = "40P01"
    ) -> None:
        self.message_id = message.message_id
        self.conflicts = conflicts
        self.sqlstate = sqlstate
        self.broken: Exception | None = None
        self.calls = 0
        self.first_call_at = self.last_call_at = 0.0

    async def __call__(self, conn: asyncpg.Connection, message: Any, _delivery: Delivery) -> None:
        if message.message_id != self.message_id:
            return
        self.calls += 1
        self.last_call_at = time.monotonic()
        self.first_call_at = self.first_call_at or self.last_call_at
        if self.conflicts != 0:
            self.conflicts -= 1
            await conn.execute(
                f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{self.sqlstate}'; END $$"
            )
        if self.broken is not None:
            raise self.broken
        await conn.execute(
            "INSERT INTO effects (message_id, event_id) VALUES ($1, $2)",
            message.message_id,
            message.event.event_id,
        )


@contextlib.asynccontextmanager
async def consuming(
    pool: asyncpg.Pool, kafka: KafkaSettings, handler: Handler, **options: Any
) -> AsyncIterator[MessageConsumer]:
    consumer = MessageConsumer(
        name=f"dlq-test-{uuid.uuid4().hex[:6]}",
        topics=[EVENTS.name],
        handlers={EventPublished: handler},
        pool=pool,
        kafka=kafka,
        **{"max_attempts": 2, **options},
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def effects_of(pool: asyncpg.Pool, message: EventPublished) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM effects WHERE event_id = $1", message.event.event_id
        )
        return count


async def letters_by(kafka: KafkaSettings, consumer: MessageConsumer) -> list[Any]:
    """Every dead letter ``consumer`` wrote (the topic is shared with other tests, whose
    poison this consumer reads and dead-letters too)."""
    records = await read_topic(kafka, EVENTS.dlq.name, EVENTS.dlq.partitions)
    return [r for r in records if header(r.headers, "dlq.consumer") == consumer.name]


async def letters_of(
    kafka: KafkaSettings, consumer: MessageConsumer, message: EventPublished
) -> list[Any]:
    """The dead letters ``consumer`` wrote for ``message``."""
    return [
        r
        for r in await letters_by(kafka, consumer)
        if header(r.headers, "message_id") == str(message.message_id)
    ]


async def counted_as_written(kafka: KafkaSettings, consumer: MessageConsumer) -> bool:
    """Whether the consumer's own count of dead letters equals the letters it wrote."""
    return consumer.stats.dead_lettered == len(await letters_by(kafka, consumer))


async def the_letter(
    kafka: KafkaSettings, consumer: MessageConsumer, message: EventPublished
) -> Any:
    """The one dead letter ``consumer`` writes for ``message``."""
    [letter] = await eventually(
        lambda: letters_of(kafka, consumer, message), timeout_s=90, what="the dead letter"
    )
    return letter


async def dead_lettered(
    kafka: KafkaSettings, consumer: MessageConsumer, message: EventPublished
) -> tuple[Any, str]:
    """Send ``message`` to a consumer that cannot handle it: its dead letter, and the id
    `stolive dlq` names it by."""
    await produce_messages(kafka, [message])
    letter = await the_letter(kafka, consumer, message)
    return letter, f"{letter.topic}:{letter.partition}:{letter.offset}"


async def stolive(database_url: str, kafka: KafkaSettings, *args: str) -> tuple[int, str]:
    """Run ``stolive <args>`` (the ops commands) as an operator does; (exit code, output)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stolive.ops", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def open_letters(database_url: str, kafka: KafkaSettings) -> dict[str, dict[str, Any]]:
    code, output = await stolive(
        database_url, kafka, "dlq", "list", "--topic", EVENTS.name, "--json"
    )
    assert code == 0, output
    return {letter["id"]: letter for letter in json.loads(output)}


async def test_a_deadlock_is_retried_for_seconds_and_then_has_its_effect_once(
    pool: asyncpg.Pool, kafka: KafkaSettings, figures: Callable[[str], None]
) -> None:
    message = published()
    handler = Handler(message, conflicts=6)  # 0.1 + 0.2 + ... + 3.2 s of backoff: 6 s of deadlocks
    async with consuming(pool, kafka, handler) as consumer:
        await produce_messages(kafka, [message])
        await eventually(lambda: effects_of(pool, message), timeout_s=90, what="the effect")
        # Its count of dead letters is the letters it wrote (other tests' poison), none ours.
        await eventually(
            lambda: counted_as_written(kafka, consumer),
            timeout_s=60,
            what="the count to match the topic",
        )
    seconds = handler.last_call_at - handler.first_call_at
    assert handler.calls == 7
    assert await effects_of(pool, message) == 1
    assert await letters_of(kafka, consumer, message) == []
    figures(f"deadlock 6 times over {seconds:.1f} s: 0 dead letters, the effect once")


async def test_a_conflict_that_outlasts_the_retry_window_is_dead_lettered_with_its_error(
    pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    message = published()
    handler = Handler(
        message, conflicts=-1, sqlstate="40001"
    )  # a serialization failure, every time
    async with consuming(pool, kafka, handler, transient_retry_s=2.0) as consumer:
        await produce_messages(kafka, [message])
        letter = await the_letter(kafka, consumer, message)
    assert header(letter.headers, "dlq.error_type") == "SerializationError"
    assert handler.last_call_at - handler.first_call_at >= 2.0, "tried for the whole window"
    assert handler.calls > 2, "retried more often than max_attempts allows other errors"
    assert await effects_of(pool, message) == 0


async def test_a_message_that_fails_validation_in_its_handler_is_dead_lettered_at_once(
    pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    class Strict(BaseModel):
        seats: int

    message = published()
    handler = Handler(message)
    try:
        Strict.model_validate({"seats": "veel"})
    except Exception as exc:
        handler.broken = exc
    async with consuming(pool, kafka, handler, max_attempts=5) as consumer:
        await produce_messages(kafka, [message])
        letter = await the_letter(kafka, consumer, message)
    assert header(letter.headers, "dlq.error_type") == "ValidationError"
    assert handler.calls == 1


async def test_a_dead_letter_is_replayed_after_the_fix_and_has_its_effect_exactly_once(
    database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings, figures: Callable[[str], None]
) -> None:
    message = published()
    handler = Handler(message)
    handler.broken = RuntimeError("template 'bevestiging' missing")
    async with consuming(pool, kafka, handler) as consumer:
        letter, letter_id = await dead_lettered(kafka, consumer, message)
        listed = (await open_letters(database_url, kafka))[letter_id]
        assert listed["error_type"] == "RuntimeError"
        assert "bevestiging" in listed["error"]
        assert listed["message_id"] == str(message.message_id)
        assert listed["source"].startswith(f"{EVENTS.name}[")
        code, shown = await stolive(database_url, kafka, "dlq", "show", letter_id)
        assert code == 0, shown
        assert "dlq.error_type: RuntimeError" in shown

        handler.broken = None  # the fix is deployed
        code, output = await stolive(database_url, kafka, "dlq", "replay", letter_id, "--by", "ops")
        assert code == 0, output
        await eventually(
            lambda: effects_of(pool, message), timeout_s=90, what="the replayed message's effect"
        )
        assert letter_id not in await open_letters(database_url, kafka)

        code, output = await stolive(database_url, kafka, "dlq", "replay", letter_id)
        assert code == 2, output
        assert "already handled" in output
        # A second copy anyway (a replay from another shell, a redelivery): no second effect.
        await produce_messages(kafka, [message])
        await eventually(
            lambda: consumer.stats.redeliveries >= 1, timeout_s=90, what="the copy recognised"
        )
    assert await effects_of(pool, message) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT action, handled_by, message_id, replayed_offset"
            " FROM operations.dead_letters_handled WHERE dlq_offset = $1",
            letter.offset,
        )
    assert (row["action"], row["handled_by"]) == ("replayed", "ops")
    assert row["message_id"] == str(message.message_id)
    assert row["replayed_offset"] is not None
    figures("dead letter replayed after the fix: effect once, second replay refused, copy ignored")


async def test_a_discarded_dead_letter_leaves_the_list_and_is_not_sent_again(
    database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    message = published()
    handler = Handler(message)
    handler.broken = RuntimeError("a test event nobody needs")
    async with consuming(pool, kafka, handler) as consumer:
        _letter, letter_id = await dead_lettered(kafka, consumer, message)
        assert letter_id in await open_letters(database_url, kafka)
        code, output = await stolive(
            database_url, kafka, "dlq", "discard", letter_id, "--note", "testbericht"
        )
        assert code == 0, output
        assert letter_id not in await open_letters(database_url, kafka)
    on_topic = await read_topic(kafka, EVENTS.name, EVENTS.partitions)
    copies = [r for r in on_topic if header(r.headers, "message_id") == str(message.message_id)]
    assert len(copies) == 1, "only the original: a discard sends nothing"
    assert handler.calls == 2
