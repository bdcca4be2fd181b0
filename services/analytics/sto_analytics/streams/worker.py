"""``python -m sto_analytics worker``: one Faust worker with every table, agent and timer.

With ``METRICS_PORT`` set (0: off) the worker serves Prometheus text on that port (any path,
``/metrics`` included) from its own thread: the live viewers of the events whose partitions it
owns (``stolive_worker_live_viewers``) and its lag per topic partition (``stolive_consumer_lag``,
consumer = the worker's name), both refreshed by a timer on the worker's event loop.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from pathlib import Path
from typing import Any

import faust
import mode.loop
from prometheus_client import start_http_server

from sto_analytics.config import AnalyticsSettings
from sto_analytics.streams import events, registrations, viewers
from sto_analytics.streams.app import create_faust_app
from sto_analytics.streams.shared import Shared
from sto_analytics.streams.viewers import LiveState
from stolive_shared.logging import setup_logging
from stolive_shared.metrics import CONSUMER_LAG, WORKER_LIVE_VIEWERS

log = logging.getLogger(__name__)


def build(settings: AnalyticsSettings) -> faust.App:
    app = create_faust_app(settings)
    shared = Shared(settings)
    registrations.register(app, settings, shared)
    live = viewers.register(app, settings, shared)
    events.register(app, settings, shared)
    if settings.metrics_port:
        register_metrics(app, settings, live)
    return app


def register_metrics(app: faust.App, settings: AnalyticsSettings, live: LiveState) -> None:
    """Refresh the worker's gauges on its own loop: the metrics thread only reads numbers."""
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


def run_worker(settings: AnalyticsSettings) -> None:
    Path(settings.faust_data_dir).mkdir(parents=True, exist_ok=True)
    # Faust's stream yields to the event loop once per record (``await sleep(0)``): uvloop
    # (installed with uvicorn[standard]) makes each of those loop turns several times cheaper.
    with contextlib.suppress(ImportError):
        mode.loop.use("uvloop")
    app = build(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.http_host)
    # Faust allocates several short-lived objects per record and the live state holds ~10^5
    # long-lived ones: collect the young generation less often, and never scan what exists
    # at start (modules, settings) again.
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # Faust replaces the root handlers; ours go back once it has configured logging.
    setup_logging(settings.worker_name, settings.log_level, as_json=settings.log_json)
    if settings.metrics_port:
        log.info("worker metrics on %s:%d", settings.http_host, settings.metrics_port)
    worker.execute_from_commandline()
