"""A registration's life on a real PostgreSQL: colleagues, the waiting list, capacity changes
from the events topic, check-in, privacy export and erasure; each outcome a message in the
outbox, keyed by event id."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sto_registrations import repository
from sto_registrations.bootstrap import DEFINITION
from sto_registrations.domain import Applicant, SignUpRefused
from sto_registrations.service import CheckInRefused, RegistrationsService
from stolive_shared import links
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import PersonErased, RegistrationView
from stolive_shared.contracts.sealed import Contact
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.links import PersonalLinks
from stolive_shared.privacy import keyring, person_key
from stolive_shared.urls import PublicUrls

SCHEMA = "registrations"


@pytest.fixture(scope="module")
async def service(database_url: str) -> AsyncIterator[RegistrationsService]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=6)
    made = RegistrationsService(
        pool=pool,
        schema=SCHEMA,
        links=PersonalLinks("test-secret", PublicUrls("http://sto.test")),
        privacy_version="2026-12-02",
    )
    yield made
    await made.close()
    await pool.close()


def snapshot(event_id: uuid.UUID | None = None, **changes: Any) -> EventSnapshot:
    starts = datetime.now(UTC) + timedelta(days=7)
    fields: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "revision": 1,
        "kind": "regional_meeting",
        "status": "published",
        "title": "Regiobijeenkomst Twente",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=3),
        "capacity": 2,
        "waitlist_enabled": True,
    }
    fields.update(changes)
    return EventSnapshot(**fields)


async def apply(service: RegistrationsService, event: EventSnapshot) -> uuid.UUID:
    async with service.store.transaction() as registrations:
        await service.apply_event(registrations, event)
    return event.event_id


def person(name: str, role: str = "docent") -> Applicant:
    first = name.split()[0].lower()
    return Applicant(name, f"{first}@esdal.nl", "Esdal College", role, "drenthe")


async def messages(pool: asyncpg.Pool, event_id: uuid.UUID) -> list[Any]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE key = $1 ORDER BY id", str(event_id)
        )
    return [decode(bytes(r["payload"])) for r in rows]


async def contact_of(pool: asyncpg.Pool, view: RegistrationView) -> Contact | None:
    """The contact a message sealed, as a consumer opens it with the registration's key."""
    async with pool.acquire() as conn:
        return await keyring.open_contact(conn, view.contact)


async def names_in(pool: asyncpg.Pool, sent: list[Any]) -> list[str]:
    return [
        contact.name if (contact := await contact_of(pool, m.registration)) else "?" for m in sent
    ]


async def test_an_address_signed_up_again_is_told_so_by_e_mail_at_most_once_an_interval(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=None))
    first = await service.sign_up(event_id, person("Tess Bakker"))
    someone = Applicant("Iemand Anders", "TESS@esdal.nl", "Elders", "anders", None)
    again = await service.sign_up(event_id, someone)  # the same address, under any name

    assert again.registration.id == first.registration.id
    assert again.repeated
    assert not first.repeated
    assert again.registration.applicant.name == "Tess Bakker"  # nothing of it changed
    await service.sign_up(event_id, person("Tess Bakker"))  # a third time, at once
    await service.drain_follow_ups()
    types = [m.type for m in await messages(service.pool, event_id)]
    assert types == ["registration.confirmed", "registration.sign_up_repeated"]
    [_, told] = await messages(service.pool, event_id)
    assert told.registration.registration_id == first.registration.id
    # No link travels: notifications makes the manage link; the contact opens to Tess alone.
    assert told.registration.manage_url == ""
    told_contact = await contact_of(service.pool, told.registration)
    assert told_contact is not None
    assert (told_contact.name, told_contact.email) == ("Tess Bakker", "tess@esdal.nl")

    # After the interval the address is told again.
    later = service.clock
    service.clock = lambda: later() + service.repeat_notice_interval + timedelta(seconds=1)
    try:
        await service.sign_up(event_id, person("Tess Bakker"))
        await service.drain_follow_ups()
    finally:
        service.clock = later
    types = [m.type for m in await messages(service.pool, event_id)]
    assert types.count("registration.sign_up_repeated") == 2


async def test_a_teacher_signs_up_colleagues_each_with_their_own_registration_and_links(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=2, waitlist_enabled=False))

    answers = await service.sign_up_group(
        event_id, [person("Anna Smit"), person("Bas Kok", "schoolleider"), person("Cor Bos")]
    )

    anna, bas, cor = answers
    assert not isinstance(anna, Exception)
    assert not isinstance(bas, Exception)
    assert isinstance(cor, SignUpRefused)
    assert cor.status == 409
    assert anna.registration.group_id == bas.registration.group_id is not None
    assert anna.manage_token != bas.manage_token
    assert bas.registration.applicant.organisation == "Esdal College"
    assert bas.registration.applicant.role == "schoolleider"
    sent = await messages(service.pool, event_id)
    assert await names_in(service.pool, sent) == ["Anna Smit", "Bas Kok"]


async def test_a_waitlisted_person_leaves_the_list_and_nobody_is_promoted_for_it(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=1))
    await service.sign_up(event_id, person("Dirk Mol"))
    waiting = await service.sign_up(event_id, person("Eva Wit"))
    assert waiting.registration.status == "waitlisted"
    assert waiting.waitlist_position == 1

    await service.cancel(waiting.registration.id, "left_waitlist")

    async with service.pool.acquire() as conn:
        counts = await repository.status_counts(conn, event_id)
        held = await conn.fetchrow(
            "SELECT confirmed_count, waitlisted_count FROM events WHERE id = $1", event_id
        )
    assert (counts["confirmed"], counts["waitlisted"], counts["cancelled"]) == (1, 0, 1)
    assert (held["confirmed_count"], held["waitlisted_count"]) == (1, 0)
    last = (await messages(service.pool, event_id))[-1]
    assert (last.type, last.previous_status, last.reason) == (
        "registration.cancelled",
        "waitlisted",
        "left_waitlist",
    )


async def test_a_raised_capacity_promotes_and_a_lowered_one_takes_no_seat(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=2))
    people = [await service.sign_up(event_id, person(f"{n} Jansen")) for n in "FGHIJ"]
    assert [p.registration.status for p in people].count("waitlisted") == 3

    await apply(service, snapshot(event_id, revision=2, capacity=4))
    promoted = [
        m for m in await messages(service.pool, event_id) if m.type == "registration.promoted"
    ]
    assert await names_in(service.pool, promoted) == ["H Jansen", "I Jansen"]

    await apply(service, snapshot(event_id, revision=3, capacity=1))
    late = await service.sign_up(event_id, person("Kim Vos"))
    async with service.pool.acquire() as conn:
        counts = await repository.status_counts(conn, event_id)
    assert counts["confirmed"] == 4  # nobody confirmed lost a seat
    assert late.registration.status == "waitlisted"

    # An old revision arriving late changes nothing.
    await apply(service, snapshot(event_id, revision=2, capacity=40))
    async with service.pool.acquire() as conn:
        assert (await repository.status_counts(conn, event_id))["confirmed"] == 4


async def test_a_cancelled_event_cancels_every_registration_with_its_reason(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=1))
    await service.sign_up(event_id, person("Lot Kaan"))
    await service.sign_up(event_id, person("Maud Roos"))

    await apply(service, snapshot(event_id, revision=2, status="cancelled"))

    cancelled = [
        m for m in await messages(service.pool, event_id) if m.type == "registration.cancelled"
    ]
    assert {(m.previous_status, m.reason) for m in cancelled} == {
        ("confirmed", "event_cancelled"),
        ("waitlisted", "event_cancelled"),
    }
    with pytest.raises(SignUpRefused) as refused:
        await service.sign_up(event_id, person("Nina Berg"))
    assert refused.value.status == 410


async def test_checking_in_at_a_meeting_is_recorded_once_and_published(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=1))
    seated = await service.sign_up(event_id, person("Olaf Dam"))
    waiting = await service.sign_up(event_id, person("Pien Blok"))

    checked = await service.check_in(seated.registration.id, "organisator@sto.nl")
    again = await service.check_in(seated.registration.id, "organisator@sto.nl")
    with pytest.raises(CheckInRefused, match="wachtlijst"):
        await service.check_in(waiting.registration.id, "organisator@sto.nl")

    assert checked.checked_in_at is not None
    assert again.checked_in_at == checked.checked_in_at
    check_ins = [
        m for m in await messages(service.pool, event_id) if m.type == "registration.checked_in"
    ]
    assert len(check_ins) == 1
    assert check_ins[0].registration.registration_id == seated.registration.id


async def test_a_webinar_registration_carries_its_personal_join_link(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(kind="webinar", capacity=None))

    result = await service.sign_up(event_id, person("Quinten Ros"))

    viewer = result.registration.viewer_id
    assert result.join_url == links.watch_url("http://sto.test", "test-secret", event_id, viewer)
    [confirmed] = await messages(service.pool, event_id)
    # The message says it is a webinar; the watch link itself does not travel.
    assert confirmed.registration.webinar is True
    assert confirmed.registration.join_url is None
    with pytest.raises(CheckInRefused, match="locatie"):
        await service.check_in(result.registration.id, "organisator@sto.nl")


async def test_a_person_is_exported_then_erased_keeping_the_counts(
    service: RegistrationsService,
) -> None:
    first = await apply(service, snapshot(capacity=5))
    second = await apply(service, snapshot(capacity=5))
    await service.sign_up(first, person("Roos Vink"))
    await service.sign_up(second, Applicant("Roos Vink", "ROOS@esdal.nl", "Esdal", "docent", None))
    await service.sign_up(second, person("Sem Ruis"))

    export = await service.person_export("Roos@Esdal.nl")
    assert {r["event_id"] for r in export["registrations"]} == {first, second}
    assert {r["name"] for r in export["registrations"]} == {"Roos Vink"}
    # What she agreed to, and when: the privacy statement's version of the day.
    assert {r["privacy_version"] for r in export["registrations"]} == {"2026-12-02"}
    assert all(r["consented_at"] is not None for r in export["registrations"])

    async with service.pool.acquire() as conn:  # as the relay would have by now
        await conn.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")

    erased = await service.erase_person("roos@esdal.nl")

    assert len(erased) == 2
    assert (await service.person_export("roos@esdal.nl"))["registrations"] == []
    async with service.pool.acquire() as conn:
        assert (await repository.status_counts(conn, second))["confirmed"] == 2
        rows = await conn.fetch(
            "SELECT name, email, organisation FROM registrations WHERE id = ANY($1)", erased
        )
        kept_mentions = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE encode(payload, 'escape') LIKE '%roos@esdal.nl%'"
        )
        payloads = [
            decode(bytes(r["payload"]))
            for r in await conn.fetch("SELECT payload FROM outbox WHERE key = $1", str(second))
        ]
        erasure = await conn.fetchrow(
            "SELECT key, payload FROM outbox WHERE headers->>'type' = 'person.erased'"
        )
    assert all(tuple(r.values()) == (None, None, None) for r in rows)
    assert kept_mentions == 0  # a broker loss cannot bring the details back
    # Roos's published messages are gone and her keys with them; Sem's still opens.
    opened = [await contact_of(service.pool, m.registration) for m in payloads]  # type: ignore[attr-defined]
    assert [c.name if c else None for c in opened] == ["Sem Ruis"]
    message = json.loads(bytes(erasure["payload"]))
    assert sorted(message["registration_ids"]) == sorted(str(i) for i in erased)
    assert "roos" not in bytes(erasure["payload"]).decode()
    # The same address may sign up again later: a new registration, not the erased one.
    again = await service.sign_up(first, person("Roos Vink"))
    assert again.created


async def test_messages_carry_the_newsletter_wish_profiles_and_school_site_for_notifications(
    service: RegistrationsService,
) -> None:
    event_id = await apply(service, snapshot(capacity=1))
    fien = Applicant(
        "Fien Dijk",
        "fien@esdal.nl",
        "Esdal College (Emmen)",
        "docent",
        "drenthe",
        ("BWI", "MVI"),
        True,
        school_code="99ZG00",
    )

    await service.sign_up(event_id, fien)
    await service.sign_up(event_id, person("Gert Ros"))

    confirmed, waitlisted = await messages(service.pool, event_id)
    assert (confirmed.type, confirmed.version) == ("registration.confirmed", 4)
    assert confirmed.registration.newsletter_opt_in is True
    assert confirmed.registration.attendee.profiles == ("BWI", "MVI")
    assert confirmed.registration.attendee.school_code == "99ZG00"
    assert (waitlisted.type, waitlisted.version) == ("registration.waitlisted", 4)
    assert waitlisted.registration.newsletter_opt_in is False
    assert waitlisted.registration.attendee.profiles == ()
    assert waitlisted.registration.attendee.school_code is None
    stored, _ = await service.get(confirmed.registration.registration_id)
    assert stored.applicant.school_code == "99ZG00"


async def test_an_erasure_names_the_address_only_by_a_keyed_hash(
    service: RegistrationsService,
) -> None:
    keyed = person_key("test-secret", "hugo@esdal.nl")

    await service.erase_person("  Hugo@Esdal.NL ")

    async with service.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT key, payload FROM outbox WHERE headers->>'type' = 'person.erased'"
            " AND encode(payload, 'escape') LIKE $1",
            f"%{keyed}%",
        )
    assert row is not None
    message = decode(bytes(row["payload"]))
    assert isinstance(message, PersonErased)
    assert (message.person_key, row["key"], message.email_sha256) == (keyed, keyed, "")
    assert hashlib.sha256(b"hugo@esdal.nl").hexdigest() not in bytes(row["payload"]).decode()
    assert "hugo" not in bytes(row["payload"]).decode().lower()
