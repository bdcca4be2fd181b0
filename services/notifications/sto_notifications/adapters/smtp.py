"""The SMTP adapter: a few pooled connections and a shared rate limit.

aiosmtplib's errors are translated at this edge into ``SendFailure`` with the SMTP code, so
the rest of the service decides "temporary or permanent" from a number, not from exceptions:

    SendFailure(code=5xx)   the server refused for good (unknown user ...): never retried
    SendFailure(code=4xx)   try later (greylisting, mailbox busy)
    SendFailure(code=None)  no answer (refused connection, timeout, dropped): try later

With a DKIM key configured every message is signed here, on its finished bytes, just before
it goes out (``dkim.py``); the signing runs in a thread so the other connections keep going.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

import aiosmtplib

from sto_notifications.adapters.dkim import DkimSigner
from sto_notifications.config import NotificationsSettings


class SendFailure(Exception):
    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class RateLimiter:
    """At most ``per_s`` sends per second over every connection of a process (0: no limit).

    Each caller takes the next free slot; slots are ``1/per_s`` apart, so the rate holds on
    average and bursts do not build up while idle beyond one slot."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / per_s if per_s > 0 else 0.0
        self._clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class SmtpPool:
    """A few long-lived SMTP connections, each used by one sender at a time."""

    def __init__(
        self,
        settings: NotificationsSettings,
        limiter: RateLimiter | None = None,
        signer: DkimSigner | None = None,
    ) -> None:
        self._settings = settings
        self._signer = signer or DkimSigner.from_settings(settings)
        self.limiter = limiter or RateLimiter(settings.mail_rate_per_s)
        self.size = max(1, settings.smtp_connections)
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(None)

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        options: dict[str, Any] = {
            "hostname": s.smtp_host,
            "port": s.smtp_port,
            "timeout": s.smtp_timeout_s,
            "use_tls": s.smtp_security == "tls",
            "start_tls": s.smtp_security == "starttls",
        }
        if s.smtp_username:
            options["username"] = s.smtp_username
            options["password"] = s.smtp_password.get_secret_value() if s.smtp_password else ""
        return aiosmtplib.SMTP(**options)

    async def send(self, message: EmailMessage) -> None:
        signer = self._signer
        if signer is None:
            await self._transact(lambda client: client.send_message(message))
            return
        sender = parseaddr(str(message["From"]))[1]
        recipients = [address for _, address in getaddresses(message.get_all("To", []))]
        data = await asyncio.to_thread(signer.sign, message.as_bytes(policy=policy.SMTP))
        await self._transact(lambda client: client.sendmail(sender, recipients, data))

    async def send_raw(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_data: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send pre-built bytes (a composed mailing message) to one recipient; once the
        envelope is accepted, wait for ``before_data`` before the content goes.

        The envelope commands go straight to the connection: both addresses were checked by
        ``domain.is_valid_address`` (ASCII, no spaces or brackets), so the address parsing
        ``sendmail`` repeats for every message (a sixth of its cost here) is not needed, and
        aiosmtplib still refuses any CR or LF in a command."""
        if self._signer is not None:
            data = await asyncio.to_thread(self._signer.sign, data)
        mail_from = b"FROM:<" + sender.encode("ascii") + b">"
        rcpt_to = b"TO:<" + recipient.encode("ascii") + b">"

        async def transaction(
            client: aiosmtplib.SMTP,
        ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
            for command, argument, accepted in (
                (b"MAIL", mail_from, (250,)),
                (b"RCPT", rcpt_to, (250, 251)),
            ):
                response = await client.execute_command(command, argument)
                if response.code not in accepted:
                    await client.rset()  # end the envelope: the connection stays usable
                    raise SendFailure(f"{response.code} {response.message}", response.code)
            if before_data is not None:
                try:
                    await before_data()
                except Exception:
                    await client.rset()  # no content follows: the connection stays usable
                    raise
            await client.data(data)
            return {}, ""

        await self._transact(transaction)

    async def _transact(
        self,
        send: Callable[
            [aiosmtplib.SMTP], Awaitable[tuple[dict[str, aiosmtplib.SMTPResponse], str]]
        ],
    ) -> None:
        await self.limiter.wait()
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                client = self._client()
                await client.connect()
                if client.last_ehlo_response is None and client.last_helo_response is None:
                    await client.ehlo()
            errors, _ = await send(client)
            if errors:
                response = next(iter(errors.values()))
                raise SendFailure(f"{response.code} {response.message}", response.code)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused else 550
            raise SendFailure(f"{code} {refused.message if refused else exc}", code) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._discard(client)
            client = None
            raise SendFailure(f"{exc.code} {exc.message}", exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._discard(client)
            client = None
            raise SendFailure(f"no answer from SMTP server: {exc}", None) from exc
        except asyncio.CancelledError:
            # Cancelled halfway through a conversation: the server's late answer would be
            # taken for the answer to the next command sent on this connection.
            await self._discard(client)
            client = None
            raise
        finally:
            self._idle.put_nowait(client)

    @staticmethod
    async def _discard(client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        drained = 0
        while not self._idle.empty():
            await self._discard(self._idle.get_nowait())
            drained += 1
        for _ in range(drained):
            self._idle.put_nowait(None)
