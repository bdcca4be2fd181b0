"""One path through every service, each step a real process or a real consumer.

Organiser creates a webinar (events API) -> registrations learns it from Kafka -> a person signs
up through the gateway -> notifications emails a confirmation to a real SMTP server ->
the analytics Faust worker counts the registration -> the test reads the count over HTTP.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from stolive_shared.contracts.codec import header
from stolive_shared.contracts.registrations import RegistrationConfirmed
from stolive_shared.contracts.topics import EVENTS, REGISTRATIONS
from stolive_shared.messaging.kafka import create_producer
from tests.e2e.conftest import Platform
from tests.sealing import TEST_KEYS
from tests.support import eventually, form_token, produce_messages, read_topic


async def published_event(
    platform: Platform, *, capacity: int | None = None, title: str = ""
) -> str:
    await platform.organiser.put(
        "/api/regions", json=[{"code": "drenthe", "name": "Drenthe", "province": "Drenthe"}]
    )
    starts = datetime.now(UTC) + timedelta(days=5)
    created = await platform.organiser.post(
        "/api/events",
        json={
            "kind": "webinar",
            "title": title or f"STO LIVE #{uuid.uuid4().int % 1000}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(minutes=30)).isoformat(),
            "stream_url": "https://live.sterktechniekonderwijs.nl/demo",
            "capacity": capacity,
        },
    )
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    published = await platform.organiser.post(f"/api/events/{event_id}/publish")
    assert published.json()["status"] == "published"
    await eventually(
        lambda: _status_is(platform, f"/registrations/api/events/{event_id}/counts", 200),
        what="the registrations service to learn the event from Kafka",
    )
    return event_id


async def _status_is(platform: Platform, path: str, status: int) -> bool:
    return (await platform.gateway.get(path)).status_code == status


async def sign_up(platform: Platform, event_id: str, email: str) -> dict[str, Any]:
    answer = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={
            "name": "Anna de Vries",
            "email": email,
            "organisation": "Dollard College",
            "role": "docent",
            "privacy_consent": True,
            "form_token": await form_token(platform.gateway, "/registrations", event_id),
        },
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def analytics_confirmed(platform: Platform, event_id: str) -> int:
    answer = await platform.gateway.get(f"/analytics/api/events/{event_id}/registrations")
    confirmed: int = answer.json()["confirmed"]
    return confirmed


async def test_a_sign_up_travels_through_every_service(platform: Platform) -> None:
    event_id = await published_event(platform, title="STO LIVE #27: Techniek in de regio")

    received = await sign_up(platform, event_id, "anna@dollard.nl")
    assert "Kijk in je mail" in received["message"]

    [email] = await eventually(
        lambda: platform.smtp.to("anna@dollard.nl"), what="the confirmation email"
    )
    assert email.subject == "Je bent aangemeld: STO LIVE #27: Techniek in de regio"
    text = email.message.get_body(preferencelist=("plain",))
    assert text is not None
    manage = re.search(r"http://\S+/registrations/r/(\S+)", text.get_content())
    assert manage is not None, "the confirmation carries the personal manage link"
    mine = await platform.gateway.get(f"/registrations/api/registrations/{manage.group(1)}")
    assert (mine.json()["status"], mine.json()["name"]) == ("confirmed", "Anna de Vries")

    await eventually(
        lambda: _equals(analytics_confirmed(platform, event_id), 1),
        what="analytics to count the registration",
    )


async def test_signing_up_twice_answers_alike_and_mails_the_address_its_own_link(
    platform: Platform,
) -> None:
    event_id = await published_event(platform)
    first = await sign_up(platform, event_id, "bert@school.nl")
    again = await sign_up(platform, event_id, "Bert@School.nl")
    assert again == first
    mails = await eventually(
        lambda: _when_value(platform.smtp.to("bert@school.nl"), lambda mails: len(mails) == 2),
        what="the confirmation and the 'already signed up' notice",
    )
    [confirmed] = [m for m in mails if m.subject.startswith("Je bent aangemeld")]
    [repeated] = [m for m in mails if m.subject.startswith("Je was al aangemeld")]
    link = re.compile(r"/registrations/r/\S+")
    assert link.findall(_text(repeated)) == link.findall(_text(confirmed))


def _when_value(value: Any, condition: Callable[[Any], bool]) -> Any:
    return value if condition(value) else None


def _text(email: Any) -> str:
    body = email.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def test_the_sign_up_form_works_through_the_gateway(platform: Platform) -> None:
    event_id = await published_event(platform, title="Regiowebinar Drenthe")
    form = await platform.gateway.get(f"/registrations/events/{event_id}/aanmelden")
    assert form.status_code == 200
    assert "Aanmelden: Regiowebinar Drenthe" in form.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match is not None
    fields = {
        "csrf_token": match.group(1),
        "name": "Chris Jansen",
        "email": "chris@school.nl",
        "organisation": "Esdal College",
        "role": "programmaleider",
        "consent": "ja",
    }
    answer = await platform.gateway.post(f"/registrations/events/{event_id}/aanmelden", data=fields)
    assert answer.status_code == 303
    received = await platform.gateway.get(answer.headers["location"])
    assert "Kijk in je mail" in received.text

    forged = await platform.gateway.post(
        f"/registrations/events/{event_id}/aanmelden", data={**fields, "csrf_token": "forged"}
    )
    assert forged.status_code == 403

    missing = await platform.gateway.post(
        f"/registrations/events/{event_id}/aanmelden",
        data={**fields, "email": "geen-adres", "consent": ""},
    )
    assert missing.status_code == 422
    assert "Vul een geldig e-mailadres in" in missing.text
    assert "akkoord met de privacyverklaring" in missing.text


async def test_malformed_messages_land_on_dead_letter_topics_and_consumers_keep_going(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    producer = create_producer(platform.kafka)
    await producer.start()
    try:
        for topic in (EVENTS.name, REGISTRATIONS.name):
            await producer.send_and_wait(topic, value=b"{definitely not json", key=b"poison")
            await producer.send_and_wait(
                topic, value=b'{"type": "x.y", "version": 1}', key=b"poison"
            )
    finally:
        await producer.stop()

    async def letters(topic: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for record in await read_topic(platform.kafka, f"{topic}.dlq", 1):
            if record.key == b"poison":
                consumer = header(record.headers, "dlq.consumer") or "?"
                assert header(record.headers, "dlq.error")
                found[consumer] = found.get(consumer, 0) + 1
        return found

    events_dlq = await eventually(
        lambda: _when(letters(EVENTS.name), lambda f: f.get("registrations.events") == 2),
        what="registrations' dead letters",
    )
    registrations_dlq = await eventually(
        lambda: _when(
            letters(REGISTRATIONS.name),
            lambda f: (
                f.get("notifications.registrations") == 2 and f.get("analytics.registrations") == 2
            ),
        ),
        what="notifications' and analytics' dead letters",
    )
    figures(f"dead letters: {EVENTS.name} {events_dlq}, {REGISTRATIONS.name} {registrations_dlq}")

    # Every consumer is still alive: a new event and sign-up still flow end to end.
    event_id = await published_event(platform)
    await sign_up(platform, event_id, "na-het-gif@school.nl")
    await eventually(lambda: platform.smtp.to("na-het-gif@school.nl"), what="email after poison")
    await eventually(lambda: _equals(analytics_confirmed(platform, event_id), 1), what="count")


async def test_a_registration_message_is_mailed_once_however_often_it_is_delivered(
    platform: Platform,
) -> None:
    event_id = await published_event(platform, title="Dubbel bezorgd")
    starts = datetime.now(UTC) + timedelta(days=5)
    message = RegistrationConfirmed.create(
        registration=TEST_KEYS.view(
            event_id=uuid.UUID(event_id),
            name="Dirk",
            email="dirk@school.nl",
            viewer_id="v_dirk",
            event_title="Dubbel bezorgd",
            event_starts_at=starts,
            event_ends_at=starts + timedelta(minutes=30),
            event_revision=2,
        )
    )
    keys_db = await asyncpg.connect(platform.stack.database_url)
    try:
        await TEST_KEYS.store(keys_db)  # as the sign-up stored it with the registration
    finally:
        await keys_db.close()
    await produce_messages(platform.kafka, [message] * 3)  # the same message, three times
    await eventually(lambda: platform.smtp.to("dirk@school.nl"), what="Dirk's email")
    await eventually(lambda: _equals(analytics_confirmed(platform, event_id), 1), what="count 1")
    assert len(platform.smtp.to("dirk@school.nl")) == 1


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def _when(value: Any, condition: Callable[[Any], bool]) -> Any:
    found = await value
    return found if condition(found) else None


async def test_every_service_reports_health_readiness_and_metrics(platform: Platform) -> None:
    for service in ("events", "registrations", "notifications", "analytics"):
        assert (await platform.gateway.get(f"/{service}/healthz")).json() == {"status": "ok"}
        ready = await platform.gateway.get(f"/{service}/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        # Metrics are scraped inside the network, never served at the public address.
        assert (await platform.gateway.get(f"/{service}/metrics")).status_code == 404
        async with httpx.AsyncClient(base_url=platform.stack.service_url(service)) as inside:
            metrics = (await inside.get("/metrics")).text
        assert "stolive_http_request_duration_seconds_bucket" in metrics
        assert f'stolive_outbox_backlog{{schema="{service}"}}' in metrics
        if service == "registrations":
            assert 'stolive_outbox_published_total{schema="registrations"}' in metrics
