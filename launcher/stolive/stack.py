"""The whole platform on one machine: database, broker, services, gateway, supervision.

``Stack.start`` resolves PostgreSQL (``DATABASE_URL``, else 127.0.0.1:5432 when it answers,
else an embedded server), applies every service's migrations, starts the broker (embedded Tansu
unless ``KAFKA_BOOTSTRAP_SERVERS`` is given) and creates the topics from the one definition,
then starts the service processes and the gateway, and seeds demo data once.

Supervision: a service process that dies is started again (with backoff). When the embedded
broker dies it has forgotten everything, so the stack stops the Kafka consumers, starts the
broker, creates the topics before any client can re-create them wrongly (and repairs any that
a running producer re-created first), then starts the consumers again. The outbox relays see
the broker's offsets go backwards and republish every retained message; consumers are
idempotent by message id, so the replay is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import uvicorn

from stolive.broker import EmbeddedBroker, port_is_free
from stolive.devmail import DevMailbox
from stolive.embedded_postgres import EmbeddedPostgres
from stolive.gateway import create_gateway
from stolive.processes import ManagedProcess, guard_against_orphan
from stolive.seed import seed_demo
from stolive_shared.contracts.topics import ALL_TOPICS
from stolive_shared.db import (
    CONNECTION_ERRORS,
    apply_migrations,
    create_pool,
    ensure_database,
    with_database,
)
from stolive_shared.errors import ConfigurationError
from stolive_shared.http import stateless_client
from stolive_shared.messaging.relay import republish_retained
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.organisers.store import OrganiserStore
from stolive_shared.runtime import SignalFreeServer
from stolive_shared.secrets import folder_secret
from stolive_shared.settings import KafkaSettings, ServiceSettings
from stolive_shared.web import SecurityHeaders

log = logging.getLogger(__name__)

# The programme-team account ``make up`` makes; its sign-in links arrive in the dev mailbox.
DEMO_ORGANISER = "programmateam@sterktechniekonderwijs.example"

SERVICES = ("events", "registrations", "notifications", "analytics")
DEFAULT_PORTS = {"events": 8101, "registrations": 8102, "notifications": 8103, "analytics": 8104}
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/stolive"
# How long a consumer process may take to stop before it is killed. A stop is usually over
# in well under a second, but an email sender finishes the sends under way first (up to the
# SMTP timeout, 15 s): killed before, an email the server took may go out a second time.
CONSUMER_STOP_GRACE_S = 20.0


@dataclass
class StackConfig:
    data_dir: Path
    gateway_port: int = 8000
    service_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    broker_port: int = 19092
    smtp_port: int = 1025
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    smtp_host: str | None = None
    seed: bool = True
    analytics_workers: int = 1
    kafka_session_timeout_ms: int = 10_000
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, data_dir: Path) -> StackConfig:
        env = os.environ
        config = cls(data_dir=data_dir)
        config.gateway_port = int(env.get("STOLIVE_PORT", config.gateway_port))
        config.broker_port = int(env.get("STOLIVE_BROKER_PORT", config.broker_port))
        config.database_url = env.get("DATABASE_URL") or None
        config.kafka_bootstrap_servers = env.get("KAFKA_BOOTSTRAP_SERVERS") or None
        config.smtp_host = env.get("SMTP_HOST") or None
        config.smtp_port = int(env.get("SMTP_PORT", config.smtp_port))
        for service in SERVICES:  # e.g. STOLIVE_EVENTS_PORT
            variable = f"STOLIVE_{service.upper()}_PORT"
            config.service_ports[service] = int(env.get(variable, config.service_ports[service]))
        return config

    @property
    def public_base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


class Stack:
    def __init__(self, config: StackConfig, report: Callable[[str], None] = log.info) -> None:
        self.config = config
        self.report = report
        self.database_url = ""
        self.bootstrap_servers = ""
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.mailbox: DevMailbox | None = None
        self.processes: list[ManagedProcess] = []
        self.organiser_token = ""
        self.broker_restarts = 0
        self._postgres_guard: subprocess.Popen[bytes] | None = None
        self._gateway: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        self.database_url = await self._resolve_database()
        await self._migrate()
        await self._start_broker()
        if config.smtp_host is None:
            self.mailbox = DevMailbox(config.data_dir / "mail", config.smtp_port)
            self.mailbox.start()
            self.report(f"✓ development mailbox (SMTP 127.0.0.1:{config.smtp_port})")
        self.processes = self._build_processes()
        for process in self.processes:
            process.start()
        await self._wait_ready()
        await self._start_gateway()
        self.organiser_token = await self._organiser_token()
        if config.seed:
            created = await seed_demo(
                self.service_url("events"), self.organiser_token, date.today()
            )
            for title in created:
                self.report(f"✓ demo event created: {title}")
        self._tasks.append(asyncio.create_task(self._supervise(), name="supervisor"))

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.service_ports[service]}"

    def _check_ports(self) -> None:
        config = self.config
        wanted = {"gateway (STOLIVE_PORT)": config.gateway_port}
        wanted.update({f"{name} service": port for name, port in config.service_ports.items()})
        if config.kafka_bootstrap_servers is None:
            wanted["embedded broker (STOLIVE_BROKER_PORT)"] = config.broker_port
        if config.smtp_host is None:
            wanted["development mailbox (SMTP_PORT)"] = config.smtp_port
        for what, port in wanted.items():
            if not port_is_free(port):
                raise ConfigurationError(
                    f"port {port} for the {what} is already in use: stop what uses it "
                    "(an earlier `make up`?) or choose another port"
                )

    async def _resolve_database(self) -> str:
        config = self.config
        if config.database_url:
            url = config.database_url
            await self._require_database(url, "DATABASE_URL")
            self.report(f"✓ PostgreSQL from DATABASE_URL ({_without_password(url)})")
            return url
        if await _answers(LOCAL_POSTGRES):
            await ensure_database(LOCAL_POSTGRES)
            self.report("✓ PostgreSQL at 127.0.0.1:5432 (database stolive)")
            return LOCAL_POSTGRES
        self.postgres = EmbeddedPostgres(config.data_dir / "postgres")
        dsn = await asyncio.to_thread(self.postgres.start)
        if self.postgres.pid is not None:  # started here, on the loop's thread (see processes)
            self._postgres_guard = guard_against_orphan(
                self.postgres.pid, config.data_dir / "logs" / "postgres-guard.log"
            )
        url = with_database(dsn, "stolive")
        await ensure_database(url)
        self.report(f"✓ embedded PostgreSQL (data in {config.data_dir / 'postgres'})")
        return url

    async def _require_database(self, url: str, name: str) -> None:
        try:
            await ensure_database(url)
        except Exception as exc:
            raise ConfigurationError(
                f"PostgreSQL at {_without_password(url)} cannot be reached ({exc}): "
                f"check {name}, or unset it to use the local or embedded database"
            ) from exc

    async def _migrate(self) -> None:
        from sto_analytics.bootstrap import DEFINITION as ANALYTICS
        from sto_events.bootstrap import DEFINITION as EVENTS
        from sto_notifications.bootstrap import DEFINITION as NOTIFICATIONS
        from sto_registrations.bootstrap import DEFINITION as REGISTRATIONS

        for definition in (EVENTS, REGISTRATIONS, NOTIFICATIONS, ANALYTICS):
            settings = definition.settings_factory()
            applied = await apply_migrations(
                self.database_url, settings.db_schema, [definition.migrations]
            )
            if applied:
                self.report(f"✓ {definition.name}: applied {len(applied)} migration(s)")

    async def _republish_everything(self) -> None:
        retention = timedelta(days=ServiceSettings().outbox_retention_days)
        conn = await asyncpg.connect(self.database_url)
        try:
            for service in SERVICES:
                await conn.execute(f'SET search_path TO "{service}"')
                await republish_retained(conn, retention)
        finally:
            await conn.close()

    def _kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            repair_partition_mismatch=self.broker is not None,
            alter_topic_configs=self.broker is None,
        )

    async def _start_broker(self) -> None:
        config = self.config
        if config.kafka_bootstrap_servers:
            self.bootstrap_servers = config.kafka_bootstrap_servers
            where = f"Kafka at {self.bootstrap_servers}"
        else:
            self.broker = EmbeddedBroker(
                config.broker_port, config.data_dir / "logs" / "broker.log"
            )
            (config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            await self.broker.start()
            self.bootstrap_servers = self.broker.bootstrap_servers
            where = f"embedded Kafka-protocol broker at {self.bootstrap_servers}"
        outcome = await ensure_topics(self._kafka_settings(), ALL_TOPICS)
        created = sum(1 for what in outcome.values() if what != "exists")
        self.report(f"✓ {where} ({len(outcome)} topics, {created} created)")

    def _secret(self, name: str) -> str:
        """The data folder's own secret, the one a service started by hand there uses too."""
        older = self.config.data_dir / name  # where earlier versions kept the link secret
        if older.exists() and not (self.config.data_dir / "secrets" / name).exists():
            (self.config.data_dir / "secrets").mkdir(exist_ok=True)
            older.rename(self.config.data_dir / "secrets" / name)
        return folder_secret(self.config.data_dir, name)

    def _build_processes(self) -> list[ManagedProcess]:
        config = self.config
        logs = config.data_dir / "logs"
        base = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_SESSION_TIMEOUT_MS": str(config.kafka_session_timeout_ms),
            "KAFKA_REPAIR_PARTITION_MISMATCH": "true" if self.broker else "false",
            "KAFKA_ALTER_TOPIC_CONFIGS": "false" if self.broker else "true",
            "LINK_SECRET": self._secret("link-secret"),
            "SESSION_SECRET": self._secret("session-secret"),
            "PUBLIC_BASE_URL": config.public_base_url,
            "EVENTS_API_URL": self.service_url("events"),
            "REGISTRATIONS_API_URL": self.service_url("registrations"),
            "NOTIFICATIONS_API_URL": self.service_url("notifications"),
            "ANALYTICS_API_URL": self.service_url("analytics"),
            "SMTP_HOST": config.smtp_host or "127.0.0.1",
            "SMTP_PORT": str(config.smtp_port),
            "PYTHONUNBUFFERED": "1",
            **config.extra_env,
        }

        def process(
            service: str, roles: str, *, consumes: bool = False, name: str = ""
        ) -> ManagedProcess:
            port = config.service_ports[service]
            env = {**base, "HTTP_PORT": str(port), "ROOT_PATH": f"/{service}"}
            label = name or f"{service}-{roles.replace(',', '+')}"
            return ManagedProcess(
                name=label,
                args=["-m", f"sto_{service}", roles],
                env=env,
                log_file=logs / f"{label}.log",
                consumes_kafka=consumes,
                health_url=f"{self.service_url(service)}/readyz" if "api" in roles else None,
            )

        processes = [
            process("events", "api,relay"),
            process("registrations", "api,relay"),
            process("registrations", "worker", consumes=True),
            process("notifications", "api,relay"),
            process("notifications", "worker", consumes=True),
            process("analytics", "api,relay"),
        ]
        for number in range(1, config.analytics_workers + 1):
            worker = process(
                "analytics", "worker", consumes=True, name=f"analytics-worker-{number}"
            )
            worker.env = {
                **worker.env,
                "WORKER_NAME": f"analytics-{number}",
                "FAUST_DATA_DIR": str(config.data_dir / "faust" / str(number)),
            }
            processes.append(worker)
        return processes

    async def _wait_ready(self, timeout_s: float = 90.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with stateless_client(timeout=2.0) as client:
            for process in self.processes:
                if process.health_url is None:
                    await asyncio.sleep(0)
                    if not process.is_running():
                        raise ConfigurationError(
                            f"{process.name} exited at start; see {process.log_file}"
                        )
                    self.report(f"✓ {process.name} started (pid {process.pid})")
                    continue
                while True:
                    if not process.is_running():
                        raise ConfigurationError(
                            f"{process.name} exited at start; see {process.log_file}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(process.health_url)).status_code == 200:
                            break
                    if loop.time() > deadline:
                        raise ConfigurationError(
                            f"{process.name} was not ready within {timeout_s:.0f}s; "
                            f"see {process.log_file}"
                        )
                    await asyncio.sleep(0.2)
                self.report(f"✓ {process.name} ready (pid {process.pid})")

    async def _start_gateway(self) -> None:
        upstreams = {service: self.service_url(service) for service in SERVICES}
        app = create_gateway(upstreams, self.mailbox)
        config = uvicorn.Config(
            SecurityHeaders(app, https=self.config.public_base_url.startswith("https:")),
            host="127.0.0.1",
            port=self.config.gateway_port,
            access_log=False,
            log_config=None,
            lifespan="on",
            # The gateway is the edge: it states the caller's address itself (see gateway).
            proxy_headers=False,
        )
        server = SignalFreeServer(config)
        self._gateway = server
        self._tasks.append(asyncio.create_task(server.serve(), name="gateway"))
        while not server.started:
            await asyncio.sleep(0.02)
            if self._tasks[-1].done():
                raise ConfigurationError(
                    f"the gateway could not start on port {self.config.gateway_port}"
                )
        self.report(f"✓ gateway at {self.config.public_base_url}/")

    async def _organiser_token(self) -> str:
        """The demo organiser's token, kept in the data folder (made on the first start)."""
        path = self.config.data_dir / "organiser-token"
        pool = await create_pool(self.database_url, "events", max_size=1)
        try:
            store = OrganiserStore(
                pool, self._secret("session-secret"), idle=timedelta(0), lifetime=timedelta(0)
            )
            if path.exists():
                token = path.read_text().strip()
                if await store.token_owner(token) is not None:
                    return token
            account = await store.add_account(DEMO_ORGANISER, "Programmateam (demo)", "programme")
            token = await store.create_token(account.account_id, "make up")
            path.write_text(token)
            path.chmod(0o600)
            return token
        finally:
            await pool.close()

    # -- supervision ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await asyncio.sleep(0.25)
            if self.broker is not None and not self.broker.is_running() and not self._stopping:
                await self.recover_broker()
            for process in self.processes:
                if self._stopping or process.is_running():
                    continue
                if process.due_for_restart(loop.time()):
                    self.report(f"! {process.name} exited (code {process.exit_code()}): restarting")
                    process.start()
                    process.restarted()

    async def recover_broker(self) -> None:
        """The embedded broker died and forgot everything: bring Kafka back in order."""
        assert self.broker is not None
        self.report("! the embedded broker stopped: restarting it, its topics, then the consumers")
        consumers = [p for p in self.processes if p.consumes_kafka]
        await asyncio.gather(*(p.stop(CONSUMER_STOP_GRACE_S) for p in consumers))
        while True:
            try:
                await self.broker.start()
                break
            except ConfigurationError as exc:
                self.report(f"! broker restart failed ({exc}); trying again")
                await asyncio.sleep(1.0)
        outcome = await ensure_topics(self._kafka_settings(), ALL_TOPICS)
        repaired = [name for name, what in outcome.items() if what.startswith("recreated")]
        # The relays kept publishing while the topics were being made: what went into a topic
        # that was then re-created is gone. Every schema's retained messages go out once more,
        # into the topics as they now are, before the consumers read them.
        await self._republish_everything()
        for process in consumers:
            process.start()
            process.restarted()
        self.broker_restarts += 1
        self.report(
            f"✓ broker back ({len(outcome)} topics"
            + (f", repaired {', '.join(repaired)}" if repaired else "")
            + "); consumers restarted, relays republish retained messages"
        )

    # -- stop ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop in order: gateway, APIs and relays, consumers, broker, mailbox, database."""
        self._stopping = True
        for task in self._tasks:
            if task.get_name() == "supervisor":
                task.cancel()
        if self._gateway is not None:
            self._gateway.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        apis = [p for p in self.processes if not p.consumes_kafka]
        consumers = [p for p in self.processes if p.consumes_kafka]
        await asyncio.gather(*(p.stop() for p in apis))
        await asyncio.gather(*(p.stop(CONSUMER_STOP_GRACE_S) for p in consumers))
        if self.broker is not None:
            await self.broker.stop()
        if self.mailbox is not None:
            self.mailbox.stop()
        await self.stop_database()
        self.report("✓ stopped")

    async def stop_database(self) -> None:
        """Stop the embedded PostgreSQL, if one was started, and its guard."""
        guard, self._postgres_guard = self._postgres_guard, None
        if guard is not None:
            guard.kill()  # the launcher lives: the guard has nothing to do
            await asyncio.to_thread(guard.wait)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=2)
    except (*CONNECTION_ERRORS, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.netloc.rsplit("@", 1)[0].split(":")[0] if "@" in parts.netloc else ""
    return urlunsplit(
        (parts.scheme, f"{user}@{netloc}" if user else netloc, parts.path, parts.query, "")
    )
