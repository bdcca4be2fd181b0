"""``python -m sto_analytics worker``: runs one Faust worker on the app ``bootstrap.worker_app``
builds, with what a long-running worker process needs around it (uvloop, collector tuning,
logging, and the metrics port).

With ``METRICS_PORT`` set (0: off) the worker serves Prometheus text on that port (any path,
``/metrics`` included) from its own thread; the gauges are kept by ``streams.metrics``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from pathlib import Path

import faust
import mode.loop
from prometheus_client import start_http_server

from sto_analytics.bootstrap import worker_app
from sto_analytics.config import AnalyticsSettings
from stolive_shared.logging import setup_logging

log = logging.getLogger(__name__)


def run_worker(settings: AnalyticsSettings) -> None:
    Path(settings.faust_data_dir).mkdir(parents=True, exist_ok=True)
    # Faust's stream yields to the event loop once per record (``await sleep(0)``): uvloop
    # (installed with uvicorn[standard]) makes each of those loop turns several times cheaper.
    with contextlib.suppress(ImportError):
        mode.loop.use("uvloop")
    app = worker_app(settings)
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
