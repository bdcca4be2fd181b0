"""The worker's own gauges: the live viewers of the events whose partitions it owns
(``stolive_worker_live_viewers``) and its lag per topic partition (``stolive_consumer_lag``,
consumer = the worker's name), refreshed by a timer on the worker's event loop; the metrics
thread (``streams.worker``) only reads the numbers."""

from __future__ import annotations

from typing import Any

import faust

from sto_analytics.config import AnalyticsSettings
from sto_analytics.streams.viewers import LiveState
from stolive_shared.metrics import CONSUMER_LAG, WORKER_LIVE_VIEWERS


def register(app: faust.App, settings: AnalyticsSettings, live: LiveState) -> None:
    worker = settings.worker_name
    live_viewers = WORKER_LIVE_VIEWERS.labels(worker)
    live_viewers.set(0)

    @app.timer(interval=settings.metrics_interval_s)
    async def refresh_worker_metrics() -> None:
        live_viewers.set(sum(event.viewers.count() for event in live.events.values()))
        consumer: Any = app.consumer
        read_offsets = consumer._read_offset  # Faust keeps no public position per partition
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            read = read_offsets.get(tp)
            lag = highwater - (read + 1 if read is not None else 0)
            CONSUMER_LAG.labels(worker, f"{tp.topic}/{tp.partition}").set(max(0, lag))
