"""SQL for organiser tokens and sessions (schema ``organisers``), over any service's pool.

Every statement names its tables with the schema, so a service's pool (whose ``search_path``
is the service's own schema) reads them as they are. A session check is one query; the
session's ``last_seen_at`` is written at most once a minute, not on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from stolive_shared.organisers import SCHEMA

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sto_"
# last_seen_at is moved on when it is older than this: the idle timeout is this precise.
_TOUCH_AFTER = timedelta(seconds=60)
# Sessions over (ended, idle or past their lifetime) are kept this long, then deleted.
_KEEP_ENDED = timedelta(days=30)


@dataclass(frozen=True)
class TokenOwner:
    token_id: int
    organiser: str


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OrganiserStore:
    """Tokens and sessions. ``session_key`` keys the session ids' HMAC (``SESSION_SECRET``)."""

    def __init__(
        self, pool: asyncpg.Pool, session_key: str, *, idle: timedelta, lifetime: timedelta
    ) -> None:
        self.pool = pool
        self._key = session_key.encode()
        self.idle = idle
        self.lifetime = lifetime

    # -- tokens ------------------------------------------------------------------------------

    async def create_token(self, organiser: str) -> str:
        """A new token for ``organiser``; only its hash is kept, so it is returned once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.pool.execute(
            f"INSERT INTO {SCHEMA}.tokens (name, token_sha256) VALUES ($1, $2)",
            organiser,
            token_sha256(token),
        )
        log.info("organiser token made", extra={"ctx_organiser": organiser})
        return token

    async def revoke_tokens(self, organiser: str) -> int:
        """Revoke every token of ``organiser`` and end their sessions; how many were revoked."""
        async with self.pool.acquire() as conn, conn.transaction():
            revoked = await conn.fetch(
                f"""UPDATE {SCHEMA}.tokens SET revoked_at = now()
                    WHERE name = $1 AND revoked_at IS NULL RETURNING id""",
                organiser,
            )
            await conn.execute(
                f"""UPDATE {SCHEMA}.sessions SET ended_at = now()
                    WHERE token_id = ANY($1::bigint[]) AND ended_at IS NULL""",
                [row["id"] for row in revoked],
            )
        log.info(
            "organiser tokens revoked, their sessions ended",
            extra={"ctx_organiser": organiser, "ctx_tokens": len(revoked)},
        )
        return len(revoked)

    async def token_owner(self, token: str) -> TokenOwner | None:
        """Whose token this is, if it is one and not revoked."""
        if not token.isascii() or len(token) > 200:
            return None
        row = await self.pool.fetchrow(
            f"SELECT id, name FROM {SCHEMA}.tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
            token_sha256(token),
        )
        return TokenOwner(row["id"], row["name"]) if row else None

    # -- sessions ----------------------------------------------------------------------------

    async def start_session(self, owner: TokenOwner) -> str:
        """A new session for the token's organiser; the id goes in the cookie, only once."""
        session_id = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {SCHEMA}.sessions WHERE last_seen_at < now() - $1::interval",
                self.lifetime + _KEEP_ENDED,
            )
            await conn.execute(
                f"""INSERT INTO {SCHEMA}.sessions (id_hmac, token_id, organiser)
                    VALUES ($1, $2, $3)""",
                self._hmac(session_id),
                owner.token_id,
                owner.organiser,
            )
        return session_id

    async def session_organiser(self, session_id: str) -> str | None:
        """The organiser of a live session: not ended, not idle too long, not too old, its
        token not revoked. None for anything else, a forged or malformed id included."""
        if not session_id.isascii() or len(session_id) > 100:
            return None
        id_hmac = self._hmac(session_id)
        row = await self.pool.fetchrow(
            f"""SELECT s.organiser, s.last_seen_at < now() - $2::interval AS stale
                FROM {SCHEMA}.sessions s JOIN {SCHEMA}.tokens t ON t.id = s.token_id
                WHERE s.id_hmac = $1 AND s.ended_at IS NULL AND t.revoked_at IS NULL
                  AND s.last_seen_at > now() - $3::interval
                  AND s.created_at > now() - $4::interval""",
            id_hmac,
            _TOUCH_AFTER,
            self.idle,
            self.lifetime,
        )
        if row is None:
            return None
        if row["stale"]:
            await self.pool.execute(
                f"UPDATE {SCHEMA}.sessions SET last_seen_at = now() WHERE id_hmac = $1", id_hmac
            )
        organiser: str = row["organiser"]
        return organiser

    async def end_session(self, session_id: str) -> None:
        if session_id.isascii() and len(session_id) <= 100:
            await self.pool.execute(
                f"UPDATE {SCHEMA}.sessions SET ended_at = now()"
                " WHERE id_hmac = $1 AND ended_at IS NULL",
                self._hmac(session_id),
            )

    def _hmac(self, session_id: str) -> bytes:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()
