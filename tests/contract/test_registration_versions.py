"""Versions of the registration messages. Version 2 added the newsletter opt-in and the
attendee's profiles; version 3 seals the contact; version 4 adds the school site chosen on
the form. Upcasters fill in what an older version lacked, never overwrite; a message from
before sealing has no readable contact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.registrations import (
    REGISTRATION_VIEW_MESSAGES,
    PersonErased,
    RegistrationSignUpRepeated,
    upcast_registration_v1_v2,
    upcast_registration_v2_v3,
    upcast_registration_v3_v4,
)
from stolive_shared.contracts.sealed import Contact
from stolive_shared.privacy.sealing import open_sealed

EXAMPLES = Path(__file__).parent / "examples"
TYPES = [model.model_fields["type"].default for model in REGISTRATION_VIEW_MESSAGES]
LATEST = 4


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_1_message_reads_as_version_2_without_opt_in_or_profiles(
    message_type: str,
) -> None:
    message = decode((EXAMPLES / f"{message_type}.v1.json").read_bytes())

    assert message.version == LATEST
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


# The key the version-3 examples were sealed with (a test key, not a secret).
EXAMPLE_KEY = bytes(range(32))


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_3_message_carries_the_contact_sealed_and_nothing_personal_in_clear(
    message_type: str,
) -> None:
    raw = (EXAMPLES / f"{message_type}.v3.json").read_bytes()
    message = decode(raw)

    view = message.registration  # type: ignore[attr-defined]
    assert view.contact is not None
    assert open_sealed(EXAMPLE_KEY, view.contact) == Contact(
        name="Anna de Vries", email="anna@school.nl", organisation="Dollard College"
    )
    for clear in (b"Anna", b"anna@school.nl", b"Dollard", b"/registrations/r/"):
        assert clear not in raw


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_2_message_reads_without_a_contact_so_it_cannot_bring_anyone_back(
    message_type: str,
) -> None:
    message = decode((EXAMPLES / f"{message_type}.v2.json").read_bytes())

    assert message.version == LATEST
    view = message.registration  # type: ignore[attr-defined]
    assert view.contact is None
    assert view.webinar is False


def test_a_version_2_webinar_is_known_by_its_watch_link() -> None:
    stored = json.loads((EXAMPLES / "registration.confirmed.v2.json").read_text())
    stored["registration"]["join_url"] = "https://sto.test/events/watch/x?v=token"

    upcast = upcast_registration_v2_v3(stored)

    assert upcast["registration"]["webinar"] is True
    assert upcast["registration"]["join_url"] == "https://sto.test/events/watch/x?v=token"


def test_an_erasure_names_the_person_by_a_keyed_hash_since_version_2() -> None:
    old = decode((EXAMPLES / "person.erased.v1.json").read_bytes())
    new = decode((EXAMPLES / "person.erased.v2.json").read_bytes())

    assert isinstance(old, PersonErased)
    assert isinstance(new, PersonErased)
    assert (old.person_key, old.email_sha256) == (None, "a" * 64)
    assert (new.person_key, new.email_sha256) == ("b" * 64, "")


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_3_message_reads_as_version_4_without_a_school(message_type: str) -> None:
    message = decode((EXAMPLES / f"{message_type}.v3.json").read_bytes())

    assert message.version == LATEST
    view = message.registration  # type: ignore[attr-defined]
    assert view.attendee.school_code is None
    assert view.attendee.region_code == "groningen"


@pytest.mark.parametrize("message_type", TYPES)
def test_a_version_4_message_carries_the_school_site_in_clear_and_the_contact_sealed(
    message_type: str,
) -> None:
    raw = (EXAMPLES / f"{message_type}.v4.json").read_bytes()
    message = decode(raw)

    view = message.registration  # type: ignore[attr-defined]
    assert view.attendee.school_code == "99ZG00"
    assert open_sealed(EXAMPLE_KEY, view.contact).organisation == "Dollard College"
    for clear in (b"Anna", b"anna@school.nl", b"Dollard"):
        assert clear not in raw


def test_a_repeated_sign_up_reads_as_version_3_with_or_without_a_school() -> None:
    old = decode((EXAMPLES / "registration.sign_up_repeated.v2.json").read_bytes())
    new = decode((EXAMPLES / "registration.sign_up_repeated.v3.json").read_bytes())

    assert isinstance(old, RegistrationSignUpRepeated)
    assert isinstance(new, RegistrationSignUpRepeated)
    assert (old.version, old.registration.attendee.school_code) == (3, None)
    assert (new.version, new.registration.attendee.school_code) == (3, "99ZG00")


def test_the_school_upcaster_fills_in_and_never_overwrites() -> None:
    stored = json.loads((EXAMPLES / "registration.confirmed.v4.json").read_text())
    older = json.loads((EXAMPLES / "registration.confirmed.v3.json").read_text())

    assert upcast_registration_v3_v4(json.loads(json.dumps(stored))) == stored
    upcast = upcast_registration_v3_v4(older)
    assert upcast["registration"]["attendee"]["school_code"] is None
    assert upcast["registration"]["attendee"]["region_code"] == "groningen"
    assert upcast_registration_v3_v4({"registration": None}) == {"registration": None}
    assert upcast_registration_v3_v4({"registration": {"attendee": None}}) == {
        "registration": {"attendee": None}
    }
