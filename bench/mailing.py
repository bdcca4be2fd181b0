"""Personalised mailing throughput: a 10,000-recipient newsletter sent by the notifications
service's own ``MailingSender`` to an SMTP sink in a separate process.

What is measured:
- **figure**: recipients per second from the moment the mailing is due until every recipient
  row is marked sent in PostgreSQL: claiming in small batches, composing each personal
  message (name, unsubscribe link, List-Unsubscribe, Message-ID), SMTP, and the mark written
  after each acceptance. Materialising the 10,000 recipient rows and freezing the content
  (done once, before the first email) is reported beside it.
- **ceiling**: pre-built messages of the same size sent by a bare aiosmtplib loop over the
  same number of connections to the same sink: what the SMTP client and the sink allow on
  this machine, with no database and no personalisation. Measured before and after the
  mailing; the higher of the two is the ceiling.

The sink (``python -m bench.mailing sink PORT``) is a minimal SMTP server on uvloop that
counts messages without parsing them (aiosmtpd itself managed ~330 messages/s here and would
have been the ceiling). Everything shares the machine's cores with PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any, cast

import aiosmtplib

from bench.common import free_port, fresh_database
from bench.result import BenchResult

RECIPIENTS = 10_000
CONNECTIONS = 4
ROUNDS = 2


async def run(seconds: float) -> BenchResult:
    """``seconds`` bounds how long each phase may take (the workload is fixed: 10,000)."""
    from sto_notifications.bootstrap import DEFINITION
    from sto_notifications.domain import Audience
    from sto_notifications.service import MailingDraft, MailingService
    from stolive_shared.db import apply_migrations, create_pool

    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.mailing", "sink", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _wait_smtp(port)
        async with fresh_database() as url:
            await apply_migrations(url, "notifications", [DEFINITION.migrations])
            pool = await create_pool(url, "notifications", min_size=2, max_size=12)
            try:
                async with pool.acquire() as conn:
                    await conn.execute(
                        """INSERT INTO subscribers (id, email, email_sha256, name, region_code,
                               interests, status, source)
                           SELECT gen_random_uuid(), 'lezer' || n || '@school.nl', md5(n::text),
                                  'Lezer ' || n || ' van Ée', 'NN', '{PIE}', 'confirmed', 'bench'
                           FROM generate_series(1, $1) AS n""",
                        RECIPIENTS,
                    )
                settings = _settings(url, port)
                mailings = MailingService(pool, settings)
                mailing_ids = [
                    await mailings.create(
                        MailingDraft(
                            f"De instroomcijfers van schooljaar 2023-2024 zijn bekend ({n})",
                            _NEWSLETTER_BODY,
                            Audience(kind="subscribers", regions=("NN",)),
                            include_events=False,
                        ),
                        "bench",
                    )
                    for n in range(1, ROUNDS + 1)
                ]
                sample = await _sample_message(mailings, mailing_ids[0])
                # Ceiling and mailing take turns, so a busy moment of the shared machine
                # lands on both: C M C M C, compared by their medians.
                ceilings = [await _ceiling(port, sample, seconds)]
                rounds: list[dict[str, Any]] = []
                for mailing_id in mailing_ids:
                    await mailings.schedule(mailing_id, None)
                    timing = await _helper(
                        "send", url, str(port), str(mailing_id), timeout_s=max(seconds * 6, 90)
                    )
                    rounds.append({**timing, **await mailings.progress(mailing_id)})
                    ceilings.append(await _ceiling(port, sample, seconds))
            finally:
                await pool.close()
    finally:
        sink.terminate()
        out, _ = await asyncio.wait_for(sink.communicate(), 10)
    received = int(out.decode().strip() or 0)
    rates = [r["sent"] / float(r["send_s"]) for r in rounds]
    figure = statistics.median(rates)
    ceiling = statistics.median(ceilings)
    return BenchResult(
        name="mailing",
        figure=figure,
        unit="personalised emails/s",
        ceiling=ceiling,
        details={
            "recipients per mailing": RECIPIENTS,
            "connections": CONNECTIONS,
            "mailings sent / failed / status": ", ".join(
                f"{r['sent']} / {r['failed']} / {r['status']}" for r in rounds
            ),
            "mailing emails/s (each round)": ", ".join(f"{rate:,.0f}" for rate in rates),
            "ceiling emails/s (each round)": ", ".join(f"{c:,.0f}" for c in ceilings),
            "prepare (rows + content) s": ", ".join(f"{r['prepare_s']:.2f}" for r in rounds),
            "sender CPU s per mailing": ", ".join(f"{r['cpu_s']:.2f}" for r in rounds),
            "sink received (all rounds)": received,
            "message size (bytes)": len(sample),
            "cpus": os.cpu_count(),
            "load average at the end": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "note": "shared machine: PostgreSQL, sink, sender and other sessions on the same cores",
        },
    )


async def _sample_message(mailings: Any, mailing_id: uuid.UUID) -> bytes:
    """One personalised message as the sender builds it: the ceiling sends bytes this size."""
    from sto_notifications.adapters.mime import MailingComposer

    mailing = await mailings.get(mailing_id)
    rendered = await mailings.render(mailing, personal=True)
    composer = MailingComposer(
        mailing_id=mailing_id, sender="STO <noreply@stolive.example>", rendered=rendered
    )
    recipient = uuid.uuid4()
    data: bytes = composer.compose(
        recipient, "lezer1@school.nl", "Lezer 1 van Ée", mailings.links.unsubscribe(recipient)
    )
    return data


async def _ceiling(port: int, message: bytes, seconds: float) -> float:
    """The bare loop, in its own process like the sender: emails/s."""
    with tempfile.NamedTemporaryFile(suffix=".eml") as sample:
        sample.write(message)
        sample.flush()
        result = await _helper("ceiling", str(port), sample.name, timeout_s=max(seconds * 6, 90))
    return float(result["emails_per_s"])


async def _helper(*args: str, timeout_s: float) -> dict[str, Any]:
    """Run ``python -m bench.mailing <args>`` (on uvloop, like the worker) for its JSON line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.mailing", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    if process.returncode != 0:
        raise RuntimeError(f"bench.mailing {args[0]} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _bare_loop(port: int, message: bytes) -> float:
    """Pre-built messages over ``CONNECTIONS`` bare aiosmtplib connections."""
    remaining = RECIPIENTS

    async def connection() -> int:
        nonlocal remaining
        sent = 0
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        try:
            while remaining > 0:
                remaining -= 1
                await client.sendmail("noreply@stolive.example", [f"c{remaining}@x.nl"], message)
                sent += 1
        finally:
            await client.quit()
        return sent

    started = time.perf_counter()
    counts = await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return sum(counts) / (time.perf_counter() - started)


async def _send(database_url: str, port: int, mailing_id: uuid.UUID) -> dict[str, float]:
    """The service's own scheduler and ``MailingSender``, as the worker runs them."""
    from sto_notifications import repository
    from sto_notifications.bootstrap import DEFINITION
    from sto_notifications.service import MailingSender, MailingService, Scheduler
    from stolive_shared.db import create_pool

    settings = _settings(database_url, port)
    pool = await create_pool(database_url, "notifications", min_size=2, max_size=12)
    try:
        mailings = MailingService(pool, settings)
        reactions = DEFINITION.bootstrap(DEFINITION.runtime(settings, pool)).reactions
        scheduler = Scheduler(pool, settings, reactions, mailings)
        sender = MailingSender(pool, settings)
        started = time.perf_counter()
        await scheduler.tick()
        prepared = time.perf_counter()
        await sender.drain()
        finished = time.perf_counter()
        await scheduler.tick()
        async with pool.acquire() as conn:
            progress = await repository.mailing_progress(conn, mailing_id)
    finally:
        await pool.close()
    return {
        "prepare_s": prepared - started,
        "send_s": finished - prepared,
        "sent": float(progress["sent"]),
    }


def _settings(database_url: str, port: int) -> Any:
    from pydantic import SecretStr

    from sto_notifications.config import NotificationsSettings

    return NotificationsSettings(
        database_url=database_url,
        db_schema="notifications",
        smtp_port=port,
        smtp_connections=CONNECTIONS,
        public_base_url="https://stolive.example",
        link_secret=SecretStr("bench-link-secret-0123456789"),
        events_api_url="http://127.0.0.1:9",
    )


async def _wait_smtp(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"the SMTP sink did not listen on {port}")


_NEWSLETTER_BODY = """DUO heeft de voorlopige leerlingenaantallen van het schooljaar 2022-2023 \
gepubliceerd. Vanuit alle Sterk Techniekonderwijs-regio's kijken we uit naar de nieuwe landelijke \
instroomcijfers. Na een flinke stijging van 10,4% van het aantal technische vmbo-leerlingen \
(BB/KB/GL) in het derde leerjaar in 2023, is er dit jaar een daling op te merken.

[Bekijk de cijfers](https://www.sterktechniekonderwijs.nl/instroomcijfers)

## Regioportretten 2023-2024 staan live!

De regioportretten van 2023-2024 staan weer live! Deze regioportretten bieden een compleet en \
up to date overzicht met de meest recente gegevens rondom technisch vmbo.

[Bekijk de regioportretten](https://www.sterktechniekonderwijs.nl/regioportretten)

## De beschikking voor 2024 is binnen bij de meeste regio's!

Alle STO-regio's hebben op tijd het plan en de begroting voor 2024 ingediend bij DUS-I en de \
beschikkingen zijn binnen bij de meeste regio's!
"""


class _SinkProtocol(asyncio.Protocol):
    """Just enough SMTP (RFC 5321) to accept mail: greeting, EHLO/HELO, MAIL, RCPT, DATA up
    to the lone dot, RSET, NOOP, QUIT. Counts messages; never parses them (aiosmtpd reads DATA
    line by line in Python and measured ~330 messages/s here: it would be the bottleneck)."""

    received = 0

    def __init__(self) -> None:
        self._buffer = b""
        self._in_data = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(b"220 sink.local ESMTP bench sink\r\n")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        replies: list[bytes] = []
        while True:
            if self._in_data:
                if self._buffer.startswith(b".\r\n"):
                    end, skip = 0, 3
                else:
                    end = self._buffer.find(b"\r\n.\r\n")
                    skip = 5
                if end < 0:
                    break
                self._buffer = self._buffer[end + skip :]
                self._in_data = False
                _SinkProtocol.received += 1
                replies.append(b"250 2.0.0 OK queued\r\n")
                continue
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                break
            line, self._buffer = self._buffer[:line_end], self._buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(b"250-sink.local\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                self._in_data = True
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 2.0.0 Bye\r\n")
                self._transport.write(b"".join(replies))
                self._transport.close()
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                replies.append(b"250 2.0.0 OK\r\n")
            else:
                replies.append(b"502 5.5.2 Command not recognised\r\n")
        if replies:
            self._transport.write(b"".join(replies))


def _sink(port: int) -> None:
    """The counting SMTP sink on uvloop; prints the count when terminated."""
    import signal

    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(_SinkProtocol, "127.0.0.1", port)
        await stop.wait()
        server.close()
        sys.stdout.write(f"{_SinkProtocol.received}\n")
        sys.stdout.flush()

    uvloop.run(main())


def _main(args: list[str]) -> None:
    """Helper processes: ``sink PORT``, ``ceiling PORT FILE``, ``send URL PORT MAILING``."""
    import uvloop

    if args[0] == "sink":
        _sink(int(args[1]))
    elif args[0] == "ceiling":
        with open(args[2], "rb") as sample:
            message = sample.read()
        rate = uvloop.run(_bare_loop(int(args[1]), message))
        sys.stdout.write(json.dumps({"emails_per_s": rate, "cpu_s": _cpu_s()}) + "\n")
    elif args[0] == "send":
        timing = uvloop.run(_send(args[1], int(args[2]), uuid.UUID(args[3])))
        sys.stdout.write(json.dumps({**timing, "cpu_s": _cpu_s()}) + "\n")


def _cpu_s() -> float:
    """CPU seconds this process used: a figure the shared machine's load does not distort."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    _main(sys.argv[1:])
