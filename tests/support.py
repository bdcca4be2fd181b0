"""Test helpers shared by the suites: a real SMTP sink, Kafka readers, polling."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiosmtpd.controller import Controller

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import encode
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.settings import KafkaSettings


@dataclass
class ReceivedEmail:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives; can refuse on purpose."""

    received: list[ReceivedEmail] = field(default_factory=list)
    # recipient -> SMTP answer to give at RCPT time, e.g. "550 no such user"
    refuse: dict[str, str] = field(default_factory=dict)
    # Seconds between keeping a message and answering 250: the window in which a sender has
    # been heard but does not know it yet.
    answer_delay_s: float = 0.0
    # The same, for one recipient: recipient -> seconds.
    answer_delays: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.received.append(ReceivedEmail(list(envelope.rcpt_tos), parsed))
        delay = max(
            [self.answer_delay_s, *(self.answer_delays.get(r, 0.0) for r in envelope.rcpt_tos)]
        )
        if delay:
            await asyncio.sleep(delay)
        return "250 Message accepted"

    def to(self, address: str) -> list[ReceivedEmail]:
        with self._lock:
            return [m for m in self.received if address in m.recipients]


async def produce_messages(kafka: KafkaSettings, messages: Sequence[Message]) -> None:
    """Publish ``messages`` as a relay does (encoded, keyed by their partition key) and wait
    until the broker has acknowledged every one."""
    producer = create_producer(kafka, linger_ms=20)
    await producer.start()
    try:
        acks = []
        for message in messages:
            value, headers = encode(message)
            acks.append(
                await producer.send(
                    message.TOPIC,
                    value=value,
                    key=message.partition_key().encode(),
                    headers=headers,
                )
            )
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


def embedded_kafka(bootstrap_servers: str, **settings: Any) -> KafkaSettings:
    """Settings for the embedded broker, as the launcher makes them: it forgets topics on a
    restart and clients re-create them wrongly (repair them), and it cannot alter configs."""
    return KafkaSettings(
        bootstrap_servers=bootstrap_servers,
        repair_partition_mismatch=True,
        alter_topic_configs=False,
        **settings,
    )


class Clock:
    """The time a service believes it is; tests move it instead of sleeping for hours."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """A process that keeps one core busy while the block runs: a test that must hold on a
    loaded machine (as CI's is) brings its own load."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def start_smtp_sink(port: int) -> tuple[SmtpSink, Controller]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return sink, controller


async def eventually(
    probe: Callable[[], Any],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
    what: str = "condition",
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")


async def read_partitions(
    kafka: KafkaSettings, partitions: Sequence[TopicPartition], timeout_s: float = 60.0
) -> list[Any]:
    """Every record now in ``partitions``, from offset 0 to the high watermark each fetch
    reports, read without a consumer group. Not ``end_offsets``: the embedded broker answers
    it with the newest batch's base offset + 1 (BROKER.md), which drops a batch's tail."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        waiting = set(partitions)
        while waiting:
            assert time.monotonic() < deadline, f"not read to their end in time: {waiting}"
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
            waiting = {
                tp
                for tp in waiting
                if consumer.highwater(tp) is None
                or await consumer.position(tp) < (consumer.highwater(tp) or 0)
            }
        return records
    finally:
        await consumer.stop()


async def read_topic(kafka: KafkaSettings, topic: str, partitions: int) -> list[Any]:
    """Every record now in ``topic`` (see ``read_partitions``)."""
    return await read_partitions(kafka, [TopicPartition(topic, p) for p in range(partitions)])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def serious_accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in ("serious", "critical")]


async def organiser_token(
    store: Any,
    organiser: str = "programmabureau",
    role: str = "programme",
    *,
    regions: tuple[str, ...] = (),
    events: tuple[Any, ...] = (),
) -> str:
    """An API token of an account ``organiser@sto.example`` with ``role`` (made or updated)
    in ``store`` (an ``OrganiserStore``)."""
    account = await store.add_account(
        f"{organiser}@sto.example", organiser, role, regions=regions, events=events
    )
    token: str = await store.create_token(account.account_id)
    return token


async def organiser_session(
    app: Any,
    organiser: str = "programmabureau",
    role: str = "programme",
    *,
    regions: tuple[str, ...] = (),
    events: tuple[Any, ...] = (),
) -> dict[str, str]:
    """A real session in the app's own organiser store (an account with ``role``, a token
    made for it, then logged in with it), as the cookie a browser holds after the login page."""
    access = app.state.organisers
    token = await organiser_token(access.store, organiser, role, regions=regions, events=events)
    owner = await access.store.token_owner(token)
    return {access.cookie: await access.store.start_session(owner.organiser, owner.token_id)}


async def organiser_login(client: Any, token: str) -> Any:
    """Log ``client`` (an httpx client with cookies, at the public address) in as an
    organiser through the login page, as a browser does; the login's answer."""
    login = await client.get("/events/organiser/inloggen")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf is not None
    return await client.post(
        "/events/organiser/inloggen", data={"csrf_token": csrf.group(1), "token": token}
    )


async def form_token(client: Any, registrations: str, event_id: object) -> str:
    """A form token for the JSON sign-up API (its bot guard), from the registrations API at
    ``registrations`` (a base URL or a path prefix, e.g. "/registrations")."""
    answer = await client.get(f"{registrations}/api/events/{event_id}/form-token")
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["form_token"]
    return token
