"""Abuse guards of the public sign-up form and API.

- A limit per client address (``stolive_shared.ratelimit``), kept in PostgreSQL, so every
  replica of the API draws on the same budget. A group sign-up costs one per person.
- The JSON API's bot guard: every sign-up carries a form token the page fetched from
  ``GET /api/events/{event_id}/form-token`` at least ``min_age_s`` before and at most
  ``max_age_s`` before (``FormTokens``). It is signed with a key derived from
  ``SESSION_SECRET`` and names its event, so it can neither be made up nor moved to another
  event; it proves a page (or script) asked first and took a moment, as a person does. The
  form page itself needs none: its CSRF token, honeypot and the same address limit guard it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException
from starlette.types import Scope

from stolive_shared.ratelimit import Limit, SharedLimits, Take, client_address
from stolive_shared.web import unprocessable

log = logging.getLogger(__name__)

TOO_MANY = "Te veel aanmeldingen vanaf dit adres. Wacht even en probeer het opnieuw."


@dataclass(frozen=True)
class SignUpLimit:
    """The sign-up budget of a client address, shared by every replica."""

    limits: SharedLimits
    limit: Limit

    async def enforce(self, scope: Scope, cost: float) -> None:
        """Raise 429 with ``Retry-After`` when this address has used up its budget."""
        wait = await self.retry_after(scope, cost)
        if wait:
            raise HTTPException(429, TOO_MANY, headers={"Retry-After": str(wait)})

    async def retry_after(self, scope: Scope, cost: float) -> int:
        """0 when this address may sign up ``cost`` people now (they are counted), else
        seconds to wait (and the refusal is logged, with the address)."""
        wait = await self.limits.retry_after(Take(self.limit, client_address(scope), cost))
        if wait:
            log.warning("sign-ups limited", extra={"ctx_client": client_address(scope)})
        return wait


@dataclass(frozen=True)
class FormTokens:
    """Short-lived signed tokens for the JSON sign-up API, one event each."""

    key: bytes
    min_age_s: float = 2.0
    max_age_s: float = 1800.0
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_secret(cls, session_secret: str, min_age_s: float, max_age_s: float) -> FormTokens:
        key = hmac.new(session_secret.encode(), b"sign-up form token", hashlib.sha256).digest()
        return cls(key, min_age_s, max_age_s)

    def issue(self, event_id: uuid.UUID) -> str:
        issued = f"{int(self.clock())}"
        return f"{issued}.{self._mac(event_id, issued)}"

    def problem(self, event_id: uuid.UUID, token: str) -> str | None:
        """Why this token does not let a sign-up for ``event_id`` through, in Dutch; or None."""
        issued, _, mac = token.partition(".")
        if not (issued.isascii() and issued.isdigit()) or not mac.isascii() or len(issued) > 12:
            return "Dit is geen geldige formuliersleutel."
        if not hmac.compare_digest(mac, self._mac(event_id, issued)):
            return "Deze formuliersleutel hoort niet bij dit evenement."
        age = self.clock() - int(issued)
        if age < self.min_age_s:
            return "Zo snel vult niemand een formulier in: probeer het over een paar seconden."
        if age > self.max_age_s:
            return "Deze formuliersleutel is verlopen: haal een nieuwe op."
        return None

    def _mac(self, event_id: uuid.UUID, issued: str) -> str:
        digest = hmac.new(self.key, f"{event_id}:{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


@dataclass(frozen=True)
class SignUpGuard:
    """Both guards of the JSON sign-up API, in the order they are cheapest."""

    limit: SignUpLimit
    tokens: FormTokens

    async def admit(self, scope: Scope, event_id: uuid.UUID, form_token: str, cost: float) -> None:
        """Raise 422 for a form token that does not hold, 429 past the address's budget."""
        problem = self.tokens.problem(event_id, form_token)
        if problem is not None:
            raise unprocessable({"form_token": problem})
        await self.limit.enforce(scope, cost)
