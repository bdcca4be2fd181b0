"""Runs one service in one of its roles: ``api``, ``worker``, ``relay``, ``all`` or ``migrate``.

This is the one place where a service's real parts are wired: the pool, the outbox relay, the
Kafka consumers and the HTTP server. Each service describes itself with a ``ServiceDefinition``
and its ``__main__`` calls ``main``. SIGTERM and SIGINT stop the HTTP server first (no new
work), then consumers and the relay, then the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI

from stolive_shared.db import apply_migrations, create_pool, ensure_database
from stolive_shared.logging import setup_logging
from stolive_shared.messaging.consumer import MessageConsumer
from stolive_shared.messaging.dead_letters import DeadLetterMonitor
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.metrics import MetricsProbe, metrics_router, outbox_probe
from stolive_shared.settings import ServiceSettings
from stolive_shared.telemetry import setup_telemetry
from stolive_shared.web import BodyLimit, ReadinessCheck, health_router

log = logging.getLogger(__name__)

ROLES = ("api", "worker", "relay", "all", "migrate")


def parse_roles(text: str) -> frozenset[str]:
    """'api,relay' -> {'api', 'relay'}; 'all' -> api, worker and relay."""
    roles = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = roles - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")
    if "migrate" in roles and len(roles) > 1:
        raise ValueError("'migrate' runs alone")
    return frozenset({"api", "worker", "relay"}) if "all" in roles else roles


S = TypeVar("S", bound=ServiceSettings)
P = TypeVar("P")  # a service's parts, built once per process by its bootstrap


class BackgroundWorker(Protocol):
    """A loop a service runs in its ``worker`` role besides its Kafka consumers."""

    name: str

    async def run(self) -> None: ...


@dataclass
class Runtime(Generic[S]):
    """The real parts of one running service process, handed to its app and consumers."""

    settings: S
    pool: asyncpg.Pool
    relay: OutboxRelay | None = None
    consumers: list[MessageConsumer] = field(default_factory=list)
    workers: list[BackgroundWorker] = field(default_factory=list)
    metrics_probes: Sequence[MetricsProbe] = ()
    _dead_letters: DeadLetterMonitor | None = field(default=None, repr=False)

    async def refresh_metrics(self) -> None:
        """Gauges read at scrape time: the outbox backlog of this service's schema and the age
        of its oldest row, the open dead letters, and the service's own
        (``ServiceDefinition.metrics_probes``)."""
        if self._dead_letters is None:
            self._dead_letters = DeadLetterMonitor(self.settings.kafka)
        async with self.pool.acquire() as conn:
            await outbox_probe(self.settings.db_schema)(conn)
            await self._dead_letters(conn)
            for probe in self.metrics_probes:
                await probe(conn)

    def health_router(self, status: ReadinessCheck | None = None) -> APIRouter:
        """``/healthz``, ``/readyz`` (with ``status``, else ``self.status``) and, unless it has
        a port of its own, ``/metrics``."""
        return health_router(
            lambda: self.pool,
            status or self.status,
            self.refresh_metrics,
            metrics_here=not self.settings.metrics_port,
        )

    async def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.relay is not None:
            body["outbox"] = {
                "leader": self.relay.stats.is_leader,
                "published": self.relay.stats.published,
                "republish_rounds": self.relay.stats.republish_rounds,
            }
        for consumer in self.consumers:
            body.setdefault("consumers", {})[consumer.name] = {
                "handled": consumer.stats.handled,
                "redeliveries": consumer.stats.redeliveries,
                "dead_lettered": consumer.stats.dead_lettered,
                "partitions": len(consumer.stats.assigned),
            }
        return body


@dataclass(frozen=True)
class ServiceDefinition(Generic[S, P]):
    """How the runtime runs one service. ``bootstrap`` is the one place the service's parts
    are built from the runtime (its pool, settings, clients); the HTTP app, the Kafka
    consumers and the background workers all receive those same parts (``P``)."""

    name: str
    settings_factory: Callable[[], S]
    migrations: Path
    bootstrap: Callable[[Runtime[S]], P]
    create_app: Callable[[P], FastAPI]
    create_consumers: Callable[[P], list[MessageConsumer]] = lambda _parts: []
    create_workers: Callable[[P], list[BackgroundWorker]] = lambda _parts: []
    metrics_probes: Sequence[MetricsProbe] = ()

    def runtime(self, settings: S, pool: asyncpg.Pool) -> Runtime[S]:
        """The runtime ``serve`` starts from (tests wiring a service in-process use it too)."""
        return Runtime(settings=settings, pool=pool, metrics_probes=self.metrics_probes)

    def app(self, runtime: Runtime[S]) -> FastAPI:
        """The HTTP app on freshly built parts (tests that need only the app use this)."""
        return self.create_app(self.bootstrap(runtime))


async def migrate(definition: ServiceDefinition[S, Any], settings: S) -> list[str]:
    await ensure_database(settings.database_url)
    return await apply_migrations(
        settings.database_url, settings.db_schema, [definition.migrations]
    )


def build_relay(settings: ServiceSettings, pool: asyncpg.Pool) -> OutboxRelay:
    return OutboxRelay(
        database_url=settings.database_url,
        pool=pool,
        schema=settings.db_schema,
        kafka=settings.kafka,
        batch_size=settings.outbox_batch_size,
        retention=timedelta(days=settings.outbox_retention_days),
    )


async def serve(definition: ServiceDefinition[S, Any], settings: S, roles: frozenset[str]) -> None:
    settings.check_production_ready()
    if roles == {"migrate"}:
        applied = await migrate(definition, settings)
        log.info("migrations applied: %s", applied or "none (up to date)")
        return
    pool = await create_pool(
        settings.database_url,
        settings.db_schema,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
    )
    runtime = definition.runtime(settings, pool)
    parts = definition.bootstrap(runtime)
    tasks: list[asyncio.Task[None]] = []
    server: uvicorn.Server | None = None
    if "relay" in roles:
        runtime.relay = build_relay(settings, pool)
        tasks.append(asyncio.create_task(runtime.relay.run(), name="relay"))
    if "worker" in roles:
        runtime.consumers = definition.create_consumers(parts)
        tasks.extend(asyncio.create_task(c.run(), name=c.name) for c in runtime.consumers)
        runtime.workers = definition.create_workers(parts)
        tasks.extend(asyncio.create_task(w.run(), name=w.name) for w in runtime.workers)
    if settings.metrics_port and roles & {"api", "worker"}:
        metrics = uvicorn.Config(
            metrics_app(runtime),
            host=settings.http_host,
            port=settings.metrics_port,
            access_log=False,
            log_config=None,
            lifespan="off",
        )
        tasks.append(asyncio.create_task(SignalFreeServer(metrics).serve(), name="metrics"))
    if "api" in roles:
        config = uvicorn.Config(
            BodyLimit(definition.create_app(parts), settings.max_body_bytes),
            host=settings.http_host,
            port=settings.http_port,
            root_path=settings.root_path,
            access_log=False,
            log_config=None,
            lifespan="on",
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        server = SignalFreeServer(config)
        tasks.append(asyncio.create_task(server.serve(), name="api"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s running as %s", definition.name, ",".join(sorted(roles)))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopper and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())
    if server is not None:
        server.should_exit = True
    for task in tasks:
        if task.get_name() != "api":
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    await pool.close()
    log.info("%s stopped", definition.name)


def metrics_app(runtime: Runtime[S]) -> FastAPI:
    """Only ``/metrics``, for a port the public address never routes to (``METRICS_PORT``)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(metrics_router(runtime.refresh_metrics))
    return app


class SignalFreeServer(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve``, which stops every part in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def main(definition: ServiceDefinition[S, Any], argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m sto_{definition.name}")
    parser.add_argument(
        "roles", nargs="?", default="all", help=f"one of {', '.join(ROLES)}, or several: api,relay"
    )
    args = parser.parse_args(argv)
    try:
        roles = parse_roles(args.roles)
    except ValueError as exc:
        parser.error(str(exc))
    settings = definition.settings_factory()
    setup_logging(settings.service_name, settings.log_level, as_json=settings.log_json)
    setup_telemetry(settings.service_name, settings.otel_exporter_otlp_endpoint)
    run_async(serve(definition, settings, roles))


def run_async(main_coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)
