"""The organiser's sign-in e-mail: the one-time link the events service's login page asks
for, queued like every other e-mail (so the sender retries it), once per link.

The link itself is made by the shared organiser store (``OrganiserStore.sign_in_link``, kept
there as an HMAC); this module only puts it in the account's own mailbox. The dedup key names
the link by a hash of its secret, never the secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from sto_notifications import domain
from sto_notifications.domain import EmailRequest
from sto_notifications.service.queueing import EmailQueue
from stolive_shared.organisers.roles import Organiser
from stolive_shared.urls import PublicUrls

Recorder = Callable[[asyncpg.Connection], Awaitable[None]]


class OrganiserSignIn:
    def __init__(self, pool: asyncpg.Pool, emails: EmailQueue, urls: PublicUrls) -> None:
        self._pool = pool
        self._emails = emails
        self._urls = urls

    async def send_link(
        self,
        who: Organiser,
        secret: str,
        valid_for: timedelta,
        record: Recorder | None = None,
    ) -> bool:
        """Queue the e-mail with the link (and ``record``'s audit row with it); False when
        this link was queued before."""
        link_id = hashlib.sha256(secret.encode()).hexdigest()[:32]
        request = EmailRequest(
            kind="organiser_sign_in",
            dedup_key=f"organiser_sign_in:{who.account_id}:{link_id}",
            recipient=who.email,
            event_id=None,
            registration_id=None,
            context={
                "name": domain.display_name(who.name) or "organisator",
                "sign_in_url": self._urls.organiser_sign_in(secret),
                "minutes": round(valid_for.total_seconds() / 60),
            },
        )
        async with self._pool.acquire() as conn, conn.transaction():
            email_id = await self._emails.queue(conn, request)
            if email_id is not None and record is not None:
                await record(conn)
        return email_id is not None
