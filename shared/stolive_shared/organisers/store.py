"""SQL for organiser accounts, tokens, sessions and sign-in links (schema ``organisers``).

Every statement names its tables with the schema, so a service's pool (whose ``search_path``
is the service's own schema) reads them as they are. A session or token check is one query
that also reads the account, so a changed role or a removed account counts at the next
request in every service; the session's ``last_seen_at`` is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from stolive_shared.organisers import SCHEMA
from stolive_shared.organisers.roles import Organiser, Role

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sto_"
# last_seen_at is moved on when it is older than this: the idle timeout is this precise.
_TOUCH_AFTER = timedelta(seconds=60)
# Sessions over (ended, idle or past their lifetime) are kept this long, then deleted.
_KEEP_ENDED = timedelta(days=30)
# Keeps a sign-in secret's HMAC apart from a session id's, though one key makes both.
_SIGN_IN = "sign-in:"
_ACCOUNT_COLUMNS = "a.id, a.email, a.name, a.role, a.region_codes, a.event_ids"


@dataclass(frozen=True)
class TokenOwner:
    token_id: int
    organiser: Organiser


@dataclass(frozen=True)
class TokenInfo:
    id: int
    label: str
    created_at: datetime
    revoked_at: datetime | None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _organiser(row: Any) -> Organiser:
    return Organiser(
        account_id=row["id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        regions=frozenset(row["region_codes"]),
        events=frozenset(row["event_ids"]),
    )


class OrganiserStore:
    """Accounts, tokens, sessions and sign-in links. ``session_key`` keys the HMAC of session
    ids and sign-in links (``SESSION_SECRET``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        session_key: str,
        *,
        idle: timedelta,
        lifetime: timedelta,
        sign_in_valid: timedelta = timedelta(minutes=15),
    ) -> None:
        self.pool = pool
        self._key = session_key.encode()
        self.idle = idle
        self.lifetime = lifetime
        self.sign_in_valid = sign_in_valid

    # -- accounts ----------------------------------------------------------------------------

    async def add_account(
        self,
        email: str,
        name: str,
        role: Role,
        *,
        regions: Iterable[str] = (),
        events: Iterable[uuid.UUID] = (),
    ) -> Organiser:
        """A new account, or the active one with this address brought up to date."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO {SCHEMA}.accounts AS a (email, name, role, region_codes, event_ids)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (lower(email)) WHERE removed_at IS NULL DO UPDATE
                SET name = EXCLUDED.name, role = EXCLUDED.role,
                    region_codes = EXCLUDED.region_codes, event_ids = EXCLUDED.event_ids
                RETURNING {_ACCOUNT_COLUMNS}""",
            email.strip(),
            name.strip(),
            role,
            sorted(set(regions)),
            sorted(set(events)),
        )
        return _organiser(row)

    async def change_account(
        self,
        account_id: int,
        *,
        name: str,
        role: Role,
        regions: Iterable[str] = (),
        events: Iterable[uuid.UUID] = (),
    ) -> Organiser | None:
        row = await self.pool.fetchrow(
            f"""UPDATE {SCHEMA}.accounts a SET name = $2, role = $3, region_codes = $4,
                    event_ids = $5
                WHERE id = $1 AND removed_at IS NULL RETURNING {_ACCOUNT_COLUMNS}""",
            account_id,
            name.strip(),
            role,
            sorted(set(regions)),
            sorted(set(events)),
        )
        return _organiser(row) if row else None

    async def remove_account(self, account_id: int) -> bool:
        """Remove the account: its tokens are revoked and its sessions end, in one go."""
        async with self.pool.acquire() as conn, conn.transaction():
            removed = await conn.fetchval(
                f"""UPDATE {SCHEMA}.accounts SET removed_at = now()
                    WHERE id = $1 AND removed_at IS NULL RETURNING id""",
                account_id,
            )
            await conn.execute(
                f"""UPDATE {SCHEMA}.tokens SET revoked_at = now()
                    WHERE account_id = $1 AND revoked_at IS NULL""",
                account_id,
            )
            await conn.execute(
                f"""UPDATE {SCHEMA}.sessions SET ended_at = now()
                    WHERE account_id = $1 AND ended_at IS NULL""",
                account_id,
            )
        return removed is not None

    async def account(self, account_id: int) -> Organiser | None:
        row = await self.pool.fetchrow(
            f"""SELECT {_ACCOUNT_COLUMNS} FROM {SCHEMA}.accounts a
                WHERE a.id = $1 AND a.removed_at IS NULL""",
            account_id,
        )
        return _organiser(row) if row else None

    async def accounts(self) -> list[Organiser]:
        rows = await self.pool.fetch(
            f"""SELECT {_ACCOUNT_COLUMNS} FROM {SCHEMA}.accounts a
                WHERE a.removed_at IS NULL ORDER BY a.role, lower(a.name)"""
        )
        return [_organiser(row) for row in rows]

    # -- tokens ------------------------------------------------------------------------------

    async def create_token(self, account_id: int, label: str = "") -> str:
        """A new token acting for the account; only its hash is kept, so it is returned once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.pool.execute(
            f"""INSERT INTO {SCHEMA}.tokens (name, token_sha256, account_id)
                SELECT $1, $2, id FROM {SCHEMA}.accounts WHERE id = $3 AND removed_at IS NULL""",
            label or "API",
            token_sha256(token),
            account_id,
        )
        log.info("organiser token made", extra={"ctx_account": account_id})
        return token

    async def tokens(self, account_id: int) -> list[TokenInfo]:
        rows = await self.pool.fetch(
            f"""SELECT id, name, created_at, revoked_at FROM {SCHEMA}.tokens
                WHERE account_id = $1 ORDER BY created_at DESC""",
            account_id,
        )
        return [TokenInfo(r["id"], r["name"], r["created_at"], r["revoked_at"]) for r in rows]

    async def revoke_tokens(self, account_id: int, token_id: int | None = None) -> int:
        """Revoke the account's tokens (or only ``token_id``) and end the sessions started
        with them; how many were revoked."""
        async with self.pool.acquire() as conn, conn.transaction():
            revoked = await conn.fetch(
                f"""UPDATE {SCHEMA}.tokens SET revoked_at = now()
                    WHERE account_id = $1 AND ($2::bigint IS NULL OR id = $2)
                      AND revoked_at IS NULL RETURNING id""",
                account_id,
                token_id,
            )
            await conn.execute(
                f"""UPDATE {SCHEMA}.sessions SET ended_at = now()
                    WHERE token_id = ANY($1::bigint[]) AND ended_at IS NULL""",
                [row["id"] for row in revoked],
            )
        log.info(
            "organiser tokens revoked, their sessions ended",
            extra={"ctx_account": account_id, "ctx_tokens": len(revoked)},
        )
        return len(revoked)

    async def token_owner(self, token: str) -> TokenOwner | None:
        """Whose token this is, if it is one, not revoked, and its account not removed."""
        if not token.isascii() or len(token) > 200:
            return None
        row = await self.pool.fetchrow(
            f"""SELECT t.id AS token_id, {_ACCOUNT_COLUMNS}
                FROM {SCHEMA}.tokens t JOIN {SCHEMA}.accounts a ON a.id = t.account_id
                WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND a.removed_at IS NULL""",
            token_sha256(token),
        )
        return TokenOwner(row["token_id"], _organiser(row)) if row else None

    # -- sign-in links -----------------------------------------------------------------------

    async def sign_in_link(self, email: str) -> tuple[Organiser, str] | None:
        """A one-time sign-in secret for the active account with this address, if any."""
        row = await self.pool.fetchrow(
            f"""SELECT {_ACCOUNT_COLUMNS} FROM {SCHEMA}.accounts a
                WHERE lower(a.email) = lower($1) AND a.removed_at IS NULL""",
            email.strip(),
        )
        if row is None:
            return None
        secret = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {SCHEMA}.sign_in_links WHERE created_at < now() - interval '1 day'"
            )
            await conn.execute(
                f"""INSERT INTO {SCHEMA}.sign_in_links (id_hmac, account_id, expires_at)
                    VALUES ($1, $2, now() + $3::interval)""",
                self._hmac(_SIGN_IN + secret),
                row["id"],
                self.sign_in_valid,
            )
        return _organiser(row), secret

    async def use_sign_in_link(self, secret: str) -> Organiser | None:
        """The link's account, once: a used, expired or forged link gives None."""
        if not secret.isascii() or len(secret) > 100:
            return None
        row = await self.pool.fetchrow(
            f"""WITH used AS (
                    UPDATE {SCHEMA}.sign_in_links SET used_at = now()
                    WHERE id_hmac = $1 AND used_at IS NULL AND expires_at > now()
                    RETURNING account_id)
                SELECT {_ACCOUNT_COLUMNS} FROM used JOIN {SCHEMA}.accounts a
                  ON a.id = used.account_id AND a.removed_at IS NULL""",
            self._hmac(_SIGN_IN + secret),
        )
        return _organiser(row) if row else None

    # -- sessions ----------------------------------------------------------------------------

    async def start_session(self, organiser: Organiser, token_id: int | None = None) -> str:
        """A new session for the account; the id goes in the cookie, only once."""
        session_id = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {SCHEMA}.sessions WHERE last_seen_at < now() - $1::interval",
                self.lifetime + _KEEP_ENDED,
            )
            await conn.execute(
                f"""INSERT INTO {SCHEMA}.sessions (id_hmac, token_id, account_id, organiser)
                    VALUES ($1, $2, $3, $4)""",
                self._hmac(session_id),
                token_id,
                organiser.account_id,
                organiser.email,
            )
        return session_id

    async def session_organiser(self, session_id: str) -> Organiser | None:
        """The account of a live session: not ended, not idle too long, not too old, its
        token (if it came from one) not revoked, its account not removed. None for anything
        else, a forged or malformed id included."""
        if not session_id.isascii() or len(session_id) > 100:
            return None
        id_hmac = self._hmac(session_id)
        row = await self.pool.fetchrow(
            f"""SELECT {_ACCOUNT_COLUMNS}, s.last_seen_at < now() - $2::interval AS stale
                FROM {SCHEMA}.sessions s
                JOIN {SCHEMA}.accounts a ON a.id = s.account_id AND a.removed_at IS NULL
                LEFT JOIN {SCHEMA}.tokens t ON t.id = s.token_id
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
        return _organiser(row)

    async def end_session(self, session_id: str) -> None:
        if session_id.isascii() and len(session_id) <= 100:
            await self.pool.execute(
                f"UPDATE {SCHEMA}.sessions SET ended_at = now()"
                " WHERE id_hmac = $1 AND ended_at IS NULL",
                self._hmac(session_id),
            )

    def _hmac(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()
