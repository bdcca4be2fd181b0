"""Abuse protection for the public sign-up form and API: a rate limit per client address.

The gateway appends the address it saw to ``X-Forwarded-For``; entries before it are the
client's own claims and can be forged, so the last entry is the one that counts. A request
that reaches the service directly is limited by its socket's address.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.types import Scope


def client_address(request: Request) -> str:
    return scope_client_address(request.scope)


def scope_client_address(scope: Scope) -> str:
    """``client_address`` straight from the ASGI scope (the sign-up fast path has no Request)."""
    forwarded = ""
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":  # the first one, as ``Request.headers.get`` reads it
            forwarded = value.decode("latin-1")
            break
    last = forwarded.rsplit(",", 1)[-1].strip()
    if last:
        return last
    client = scope.get("client")
    return client[0] if client else "onbekend"


class RateLimiter:
    """A token bucket per address: ``burst`` at once, then ``per_minute`` a minute.

    Memory is bounded: the least recently seen addresses are forgotten first (a forgotten
    address starts with a full bucket, which errs on the side of letting people sign up).
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def retry_after(self, address: str, cost: float = 1.0) -> int:
        """0 when the request may go ahead (and is counted), else seconds to wait."""
        if not self.enabled:
            return 0
        now = self._clock()
        rate = self.per_minute / 60.0
        tokens, seen = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - seen) * rate)
        if tokens >= cost:
            self._buckets[address] = (tokens - cost, now)
            wait = 0
        else:
            self._buckets[address] = (tokens, now)
            wait = max(1, math.ceil((cost - tokens) / rate))
        while len(self._buckets) > self._max_addresses:
            self._buckets.popitem(last=False)
        return wait


TOO_MANY = "Te veel aanmeldingen vanaf dit adres. Wacht even en probeer het opnieuw."


def enforce(request: Request, cost: float = 1.0) -> None:
    """Raise 429 with ``Retry-After`` when this address has used up its budget."""
    limiter: RateLimiter = request.app.state.rate_limiter
    enforce_in(limiter, request.scope, cost)


def enforce_in(limiter: RateLimiter, scope: Scope, cost: float = 1.0) -> None:
    if not limiter.enabled:
        return
    wait = limiter.retry_after(scope_client_address(scope), cost)
    if wait:
        raise HTTPException(429, TOO_MANY, headers={"Retry-After": str(wait)})


def rate_limited(request: Request) -> None:
    """FastAPI dependency for the public API's writes."""
    enforce(request)
