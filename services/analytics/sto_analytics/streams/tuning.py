"""Faust defaults replaced in one visible place: two that cost latency and throughput, one
that could commit an offset ahead of the table writes it caused.

- **Fetch wait.** Faust builds its worker's aiokafka consumer with ``fetch_max_wait_ms=1500``
  hard-coded (``faust/transport/drivers/aiokafka.py``, ``_create_worker_consumer``). A waiting
  fetch on the embedded broker is not woken by new data, so a beacon waited ~0.75 s on average
  and up to 1.5 s before Faust even saw it. ``FastFetchTransport`` builds the consumer exactly as
  Faust does and then sets the wait from ``KafkaSettings.fetch_max_wait_ms`` (100 ms) before the
  consumer starts (the attribute ``AIOKafkaConsumer.start`` hands to its fetcher). The app uses
  it through ``StoLiveFaustApp._new_transport``: no global registry is changed.
- **Monitor.** Faust's built-in ``Monitor`` sensor records per-message statistics (dicts keyed
  by stream and task, a deque of run times) that nothing here reads; measured, removing that
  work gave +39 % beacons/s. ``LeanMonitor`` keeps the hooks Faust itself calls for offsets and
  commits and makes the per-message ones free.
- **Flush before commit.** Before committing offsets Faust flushes its producer, but the
  flush of the buffer holding table (changelog) writes gives up after 0.1 s without a send
  (``ProducerBuffer.flush_atmost``), so on a slow broker the commit could go ahead while
  changelog writes still waited; a crash then would lose those table updates for good, their
  source records being committed. ``DrainingProducer.flush`` returns only once the buffer is
  empty. It is used through ``FastFetchTransport``, like the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import aiokafka
import faust
from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer


class FastFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: ClassVar[int] = 100

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher; fail loudly if an
        # aiokafka upgrade renames it rather than silently keeping 1,500 ms.
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise RuntimeError("aiokafka changed: cannot set the consumer's fetch wait")
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class FastFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return FastFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


class CountingBuffer(ProducerBuffer):
    """Faust's producer buffer, also counting the record it is handing to the producer (no
    longer queued, not yet with aiokafka)."""

    in_flight = 0

    async def _send_pending(self, fut: Any) -> None:
        self.in_flight += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.in_flight -= 1


class DrainingProducer(faust_aiokafka.Producer):
    """Faust's producer, whose flush returns only when every buffered record is with aiokafka
    (and then, as Faust's, when aiokafka has sent them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            raise ValueError("DrainingProducer does not support producer_threaded")
        self.buffer = self._counting = CountingBuffer(loop=self.loop, beacon=self.beacon)
        self._counting.app = self.app

    async def flush(self) -> None:
        buffer = self._counting
        while buffer.size or buffer.in_flight:
            if buffer.state != "running":
                raise RuntimeError("cannot flush: the producer buffer is not running")
            buffer.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.1)
        await super().flush()


class FastFetchTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[Any]] = FastFetchConsumer
    Producer: ClassVar[type[Any]] = DrainingProducer


class StoLiveFaustApp(faust.App):
    """``faust.App`` whose consumer waits at most ``fetch_max_wait_ms`` for new records and
    whose producer flushes completely before a commit."""

    def _new_transport(self) -> Any:
        return FastFetchTransport(self.conf.broker_consumer, self)


class LeanMonitor(Monitor):
    """Faust's Monitor without its per-message bookkeeping."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        pass

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        pass

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass
