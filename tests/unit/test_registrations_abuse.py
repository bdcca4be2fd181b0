"""The JSON sign-up API's bot guard: a form token, signed for one event, usable from a short
while after it was fetched until it expires; and whose address a limit counts."""

from __future__ import annotations

import uuid

import pytest

from sto_registrations.api.abuse import FormTokens
from stolive_shared.ratelimit import client_address

EVENT = uuid.uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> FormTokens:
    return FormTokens(b"k" * 32, min_age_s=2.0, max_age_s=1800.0, clock=clock)


def test_a_token_serves_from_two_seconds_after_it_was_fetched(
    tokens: FormTokens, clock: Clock
) -> None:
    token = tokens.issue(EVENT)
    assert tokens.problem(EVENT, token) == (
        "Zo snel vult niemand een formulier in: probeer het over een paar seconden."
    )
    clock.now += 2.0
    assert tokens.problem(EVENT, token) is None


def test_a_token_expires_after_half_an_hour(tokens: FormTokens, clock: Clock) -> None:
    token = tokens.issue(EVENT)
    clock.now += 1800.5
    assert tokens.problem(EVENT, token) == "Deze formuliersleutel is verlopen: haal een nieuwe op."


def test_a_token_is_for_its_own_event_and_cannot_be_made_up(
    tokens: FormTokens, clock: Clock
) -> None:
    token = tokens.issue(EVENT)
    clock.now += 10
    issued, _, mac = token.partition(".")
    assert (
        tokens.problem(uuid.uuid4(), token) == "Deze formuliersleutel hoort niet bij dit evenement."
    )
    # Backdated: the signature covers the moment, so an older one does not check out.
    assert tokens.problem(EVENT, f"{int(issued) - 5}.{mac}") is not None
    other_key = FormTokens(b"x" * 32, clock=clock).issue(EVENT)
    assert tokens.problem(EVENT, other_key) is not None


MALFORMED = "Dit is geen geldige formuliersleutel."
NOT_OURS = "Deze formuliersleutel hoort niet bij dit evenement."


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", MALFORMED),
        (".", MALFORMED),
        ("abc", MALFORMED),
        ("\u0663\u0663.abc", MALFORMED),  # Arabic-Indic digits: int() would read them
        ("12.m\u00e4c", MALFORMED),  # non-ASCII: compare_digest would raise
        ("9" * 40 + ".x", MALFORMED),
        ("123", NOT_OURS),
        ("123.", NOT_OURS),
    ],
)
def test_a_malformed_token_is_refused_in_dutch_not_an_error(
    tokens: FormTokens, token: str, problem: str
) -> None:
    assert tokens.problem(EVENT, token) == problem


def test_the_address_counted_is_the_one_the_trusted_proxies_report() -> None:
    """uvicorn sets the client from X-Forwarded-For only for a trusted proxy (the gateway,
    nginx); the header itself is never read here, so a client cannot choose its address."""
    scope = {
        "type": "http",
        "client": ("203.0.113.5", 40000),
        "headers": [(b"x-forwarded-for", b"198.51.100.9")],
    }
    assert client_address(scope) == "203.0.113.5"
    assert client_address({"type": "http", "headers": []}) == "onbekend"
