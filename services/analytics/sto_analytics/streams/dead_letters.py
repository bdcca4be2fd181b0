"""Records an agent cannot read go to ``<topic>.dlq`` with the error in their headers.

The same headers as the shared consumer loop writes: the record's own headers, then
``dlq.error``, ``dlq.error_type``, ``dlq.source_topic``, ``dlq.source_partition``,
``dlq.source_offset`` and ``dlq.consumer``. The agent waits until the broker has the dead
letter, so a record is acked only after its dead letter is stored; while Kafka is away it
retries. A record too large even for the dead-letter topic is dead-lettered without its value
(``dlq.value_dropped`` says how large it was): it is still traceable by partition and offset.
"""

from __future__ import annotations

import logging

import faust
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

from stolive_shared.contracts.topics import TopicSpec
from stolive_shared.privacy.redaction import redact
from stolive_shared.retry import Backoff

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, app: faust.App, source: TopicSpec, consumer: str) -> None:
        self._topic = app.topic(source.dlq.name, key_serializer="raw", value_serializer="raw")
        self._source = source.name
        self._consumer = consumer

    async def send(self, event: faust.EventT[bytes], error: Exception) -> None:
        message = event.message
        headers: dict[str, bytes] = {
            **{str(k): bytes(v) for k, v in (event.headers or {}).items() if v is not None},
            "dlq.error": redact(str(error))[:2000].encode(),
            "dlq.error_type": type(error).__name__.encode(),
            "dlq.source_topic": self._source.encode(),
            "dlq.source_partition": str(message.partition).encode(),
            "dlq.source_offset": str(message.offset).encode(),
            "dlq.consumer": self._consumer.encode(),
        }
        value = event.value
        backoff = Backoff()
        while True:
            try:
                delivered = await self._topic.send(key=event.key, value=value, headers=headers)
                await delivered
                break
            except (KafkaError, ProducerSendError) as exc:
                # Faust wraps the client's errors in ProducerSendError.
                cause = exc.__cause__ if isinstance(exc, ProducerSendError) else exc
                if isinstance(cause, MessageSizeTooLargeError) and value is not None:
                    headers["dlq.value_dropped"] = str(len(value)).encode()
                    value = None
                    continue
                await backoff.wait("dead letter not stored", exc)
        log.warning(
            "%s dead-lettered %s[%s]@%s: %s",
            self._consumer,
            self._source,
            message.partition,
            message.offset,
            error,
        )
