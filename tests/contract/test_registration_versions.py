"""Version 2 of the registration messages: the newsletter opt-in and the attendee's profiles,
filled in (never overwritten) when a version-1 message is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.registrations import (
    REGISTRATION_VIEW_MESSAGES,
    upcast_registration_v1_v2,
)

EXAMPLES = Path(__file__).parent / "examples"
TYPES = [model.model_fields["type"].default for model in REGISTRATION_VIEW_MESSAGES]


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_1_message_reads_as_version_2_without_opt_in_or_profiles(
    message_type: str,
) -> None:
    message = decode((EXAMPLES / f"{message_type}.v1.json").read_bytes())

    assert message.version == 2
    view = message.registration  # type: ignore[attr-defined]
    assert view.newsletter_opt_in is False
    assert view.attendee.profiles == ()


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_2_message_keeps_what_it_says(message_type: str) -> None:
    message = decode((EXAMPLES / f"{message_type}.v2.json").read_bytes())

    view = message.registration  # type: ignore[attr-defined]
    assert view.newsletter_opt_in is True
    assert view.attendee.profiles == ("BWI", "PIE")


def test_the_upcaster_fills_in_and_never_overwrites() -> None:
    stored = json.loads((EXAMPLES / "registration.confirmed.v2.json").read_text())

    upcast = upcast_registration_v1_v2(json.loads(json.dumps(stored)))

    assert upcast == stored
    assert upcast_registration_v1_v2({"registration": None}) == {"registration": None}
