"""The analytics worker's producer empties its buffer before Faust commits an offset.

Table writes (changelog records) wait in Faust's producer buffer. Faust flushes the producer
before each commit, but its buffer flush gives up after 0.1 s without a send; on a broker that
slow the commit would run ahead of table writes still waiting, and a crash then would lose them.
Here the real producer talks to the real broker, and each hand-off is made to take 0.3 s.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka.admin import NewTopic

from sto_analytics.config import AnalyticsSettings
from sto_analytics.streams.app import create_faust_app
from sto_analytics.streams.tuning import DrainingProducer
from stolive_shared.messaging.kafka import create_admin
from stolive_shared.settings import KafkaSettings


async def test_a_flush_returns_only_when_every_pending_table_write_was_handed_over(
    kafka: KafkaSettings, tmp_path: Any
) -> None:
    topic_name = f"test.flush-{uuid.uuid4().hex[:8]}"
    admin = create_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic_name, 1, 1)])
    finally:
        await admin.close()
    app = create_faust_app(AnalyticsSettings(kafka=kafka, faust_data_dir=str(tmp_path)))
    producer = app.producer
    assert isinstance(producer, DrainingProducer)
    handed_over: list[bytes] = []
    send = producer.send

    async def slow_send(topic: str, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)  # a broker taking 0.3 s per record
        sent = await send(topic, key, value, *args, **kwargs)
        handed_over.append(value)
        return sent

    producer.send = slow_send  # type: ignore[method-assign]
    await producer.start()
    try:
        topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
        for number in range(3):
            topic.send_soon(key=b"event", value=f"write {number}".encode())
        await producer.flush()
        assert handed_over == [b"write 0", b"write 1", b"write 2"]
    finally:
        await producer.stop()
