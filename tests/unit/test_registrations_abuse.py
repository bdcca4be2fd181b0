"""Abuse protection: a rate limit per client address, from the address the gateway saw."""

from __future__ import annotations

from starlette.requests import Request

from sto_registrations.api.abuse import RateLimiter, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_address_waits_for_its_budget() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)

    assert [limiter.retry_after("203.0.113.5") for _ in range(3)] == [0, 0, 0]
    assert limiter.retry_after("203.0.113.5") == 1
    assert limiter.retry_after("198.51.100.7") == 0  # another address has its own budget
    clock.now += 1.0
    assert limiter.retry_after("203.0.113.5") == 0


def test_a_group_sign_up_costs_one_per_person() -> None:
    limiter = RateLimiter(per_minute=60, burst=10, clock=Clock())

    assert limiter.retry_after("203.0.113.5", cost=8) == 0
    assert limiter.retry_after("203.0.113.5", cost=8) == 6


def test_no_limit_when_switched_off() -> None:
    limiter = RateLimiter(per_minute=0, burst=0, clock=Clock())

    assert all(limiter.retry_after("203.0.113.5") == 0 for _ in range(1000))


def test_memory_stays_bounded_by_forgetting_the_least_recent_addresses() -> None:
    limiter = RateLimiter(per_minute=60, burst=1, max_addresses=2, clock=Clock())
    for address in ("a", "b", "c"):
        limiter.retry_after(address)

    assert limiter.retry_after("a") == 0  # forgotten, so a full bucket again
    assert limiter.retry_after("c") == 1


def request_with(forwarded: str | None, peer: str = "127.0.0.1") -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "headers": headers, "client": (peer, 5000)})


def test_the_address_the_gateway_appended_counts_not_what_the_client_claims() -> None:
    assert client_address(request_with("1.2.3.4, 203.0.113.5")) == "203.0.113.5"
    assert client_address(request_with("203.0.113.5")) == "203.0.113.5"
    assert client_address(request_with(None, peer="198.51.100.7")) == "198.51.100.7"
