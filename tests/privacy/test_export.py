"""A person's export of their data (AVG article 15), seen from outside.

A teacher signs up for a webinar and a regional meeting, subscribes to the newsletter, watches
the webinar from her own link until it ends, and gets her e-mails: the confirmations, the
live notice, the thanks with a certificate. In her own browser she asks for her data from her
manage link, reads the link from the e-mail that answers, and finds on one Dutch page and in
one JSON file what every service holds: registrations, the subscription, every e-mail she was
sent, her viewing, attendance and certificate.

Another person, in a browser of their own, sees only their own data, and gets a clean 404 with
nothing in it from every altered form of her link. A link past its day is refused. The
routes the services read each other's data over are refused at the public address, with no
header, a guessed one, or even the real service token, however the path is spelled (dot
segments resolve to them only after the gateway's check: it refuses them on sight).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stolive_shared.internal import HEADER, service_token
from stolive_shared.links import DATA_EXPORT, MANAGE, sign_until, verify
from stolive_shared.privacy import person_key
from tests.e2e.conftest import Platform
from tests.e2e.streams import PLAYLIST, make_hls, serve
from tests.e2e.test_events_in_browser import press_play
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.e2e.test_walking_skeleton import published_event
from tests.privacy.conftest import (
    TIMEOUT_MS,
    Needles,
    Person,
    api_sign_up,
    data_link,
    go_live,
    mail,
    sign_up_in_browser,
    strings_of,
    subscribe_in_browser,
    text_of,
    watch_link,
)
from tests.support import eventually

# Finalisation right after the end, and one minute watched counts as attending: the whole
# path to a certificate within a test's patience.
PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "0",
    "SUBSCRIBE_MIN_FILL_S": "0",
    "FINALISE_GRACE_S": "0",
    "FINALISE_CHECK_INTERVAL_S": "1",
    "ATTENDANCE_MIN_MINUTES": "1",
}

ANNA = Person("Annemieke Inzagema", "a.inzagema@kijkglas-college.nl", "Kijkglas College Groningen")
BRAM = Person("Bartholomeus Eigendata", "b.eigendata@spiegelschool.nl", "Spiegelschool Leeuwarden")
WEBINAR = "Inzage in de praktijk: een STO-webinar"
MEETING = "Inzagebijeenkomst Noord"
MANAGE_LINK = re.compile(r"/registrations/r/([A-Za-z0-9._-]+)")


async def attendance_minutes(platform: Platform, event_id: str, name: str) -> int:
    """The minutes the organisers' attendance CSV (analytics) gives the person."""
    answer = await platform.gateway.get(
        f"/analytics/api/events/{event_id}/attendance.csv",
        headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
    )
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    column = rows[0].index("minuten gekeken")
    return max((int(float(row[column])) for row in rows[1:] if name in row), default=0)


def registration_of(platform: Platform, person: Person) -> uuid.UUID:
    """A registration of the person, from the manage link in their e-mail."""
    for email in platform.smtp.to(person.email):
        for token in MANAGE_LINK.findall(text_of(email)):
            registration = verify(platform.link_secret, MANAGE, token)
            if registration is not None:
                return registration
    raise AssertionError(f"no manage link mailed to {person.email}")


@pytest.fixture(scope="module")
async def anna_watched(
    platform: Platform, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Anna signs up for both events (the webinar in a browser), subscribes to the newsletter,
    watches the webinar from her own link until it ends and gets her thanks; Bram signs up
    for the webinar only. The event ids."""
    webinar = await published_event(platform, title=WEBINAR)
    meeting = await published_meeting(platform, MEETING)
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        await sign_up_in_browser(page, platform, webinar, ANNA)
        await subscribe_in_browser(page, platform, ANNA)
        await api_sign_up(platform, meeting, ANNA)
        await api_sign_up(platform, webinar, BRAM)
        await mail(platform, ANNA.email, f"Je bent aangemeld: {MEETING}")
        await mail(platform, BRAM.email, f"Je bent aangemeld: {WEBINAR}")

        # A real stream (made by ffmpeg, served on loopback): the player counts once it plays.
        root = tmp_path_factory.mktemp("stream")
        make_hls(root / "live", seconds=150)
        with serve(root) as stream:
            moved = await platform.organiser.patch(
                f"/api/events/{webinar}", json={"stream_url": stream.url(f"live/{PLAYLIST}")}
            )
            assert moved.status_code == 200, moved.text
            await go_live(platform, webinar)
            await page.goto(await watch_link(platform, ANNA, webinar))
            await press_play(page)
            await eventually(
                lambda: _at_least(attendance_minutes(platform, webinar, ANNA.name), 1),
                timeout_s=120,
                what="analytics to count Anna's minute",
            )
    finally:
        await context.close()
    ended = await platform.organiser.post(f"/api/events/{webinar}/end", json={})
    assert ended.status_code == 200, ended.text
    await mail(platform, ANNA.email, f"Bedankt voor je deelname aan {WEBINAR}")
    return {"webinar": webinar, "meeting": meeting}


async def _at_least(value: Any, minimum: int) -> bool:
    return bool(await value >= minimum)


async def test_the_person_finds_everything_every_service_holds_on_one_page_and_in_one_file(
    platform: Platform, browser: Any, anna_watched: dict[str, str], figures: Callable[[str], None]
) -> None:
    """From the manage link to the e-mailed data link, in her own browser: registrations,
    subscription, every e-mail she was sent, viewing, attendance and certificate."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        link = await data_link(page, platform, ANNA)
        answer = await page.goto(link)
        assert answer is not None
        assert answer.status == 200
        assert await page.get_by_role("heading", level=1).inner_text() == (
            "Je gegevens bij Sterk Techniekonderwijs"
        )
        shown = " ".join((await page.inner_text("main")).split())
        for fact in (ANNA.email, ANNA.name, ANNA.school, WEBINAR, MEETING):
            assert fact in shown, fact
        assert "Geen aanmelding voor de nieuwsbrief" not in shown
        # Every e-mail she received is listed by its subject, this one's request included.
        subjects = {m.subject for m in platform.smtp.to(ANNA.email)}
        for subject in subjects:
            assert subject in shown, subject
        watched = re.search(
            rf"{re.escape(WEBINAR)}: (\d+) minuten live en \d+ minuten teruggekeken; aanwezig",
            shown,
        )
        assert watched is not None, shown
        assert int(watched.group(1)) >= 1
        certificate = page.get_by_role("link", name="certificaat")
        certificate_url = await certificate.get_attribute("href")
        assert certificate_url is not None

        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Download alles als bestand (JSON)").click()
        download = await download_info.value
        assert download.suggested_filename == "mijn-gegevens-sto.json"
        path = await download.path()
        export = json.loads(path.read_text(encoding="utf-8"))

        answer = await page.goto(certificate_url)
        assert answer is not None
        assert answer.status == 200
        assert ANNA.name in await page.inner_text("main")
    finally:
        await context.close()

    # The file: one document with each service's part.
    assert export["email"] == ANNA.email
    assert export["privacy_statement_version"]
    registrations = {r["event_title"]: r for r in export["registrations"]}
    assert set(registrations) == {WEBINAR, MEETING}
    assert {r["name"] for r in registrations.values()} == {ANNA.name}
    assert {r["organisation"] for r in registrations.values()} == {ANNA.school}
    assert all(r["privacy_version"] and r["consented_at"] for r in registrations.values())

    notifications = export["notifications"]
    [subscription] = notifications["subscriptions"]
    assert (subscription["email"], subscription["status"]) == (ANNA.email, "confirmed")
    assert subscription["confirmed_at"]
    assert subjects <= {e["subject"] for e in notifications["emails"]}
    assert all(e["created_at"] for e in notifications["emails"])

    analytics = {a["event_id"]: a for a in export["analytics"]["registrations"]}
    webinar = analytics[anna_watched["webinar"]]
    assert webinar["minutes_live"] >= 1
    assert webinar["attended"] is True
    assert webinar["certificate_url"] == certificate_url
    assert anna_watched["meeting"] in analytics, "the meeting registration is there too"

    bram = Needles(strings_of(BRAM))
    assert bram.found_in(json.dumps(export, ensure_ascii=False).encode()) == []
    figures(
        f"privacy/export: one data link from the manage page; page and JSON hold "
        f"{len(export['registrations'])} registrations, {len(notifications['subscriptions'])} "
        f"subscription, {len(notifications['emails'])} e-mails (all {len(subjects)} subjects "
        f"received), {webinar['minutes_live']} minute(s) live, attended, a certificate"
    )


@pytest.mark.usefixtures("anna_watched")
async def test_another_person_sees_only_their_own_and_nothing_from_an_altered_link(
    platform: Platform, browser: Any
) -> None:
    """Bram's own link shows Bram only; every altered form of Anna's link, and her link past
    its day, is a 404 with nothing of her in it; nor can Bram erase her with one."""
    base = platform.stack.config.public_base_url
    anna = Needles(strings_of(ANNA))
    anna_registration = registration_of(platform, ANNA)
    valid = sign_until(platform.link_secret, DATA_EXPORT, anna_registration, time.time() + 600)
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        bram_link = await data_link(page, platform, BRAM)
        await page.goto(bram_link)
        shown = await page.inner_text("main")
        assert BRAM.email in shown
        assert BRAM.name in shown
        assert anna.found_in((await page.content()).encode()) == []
        assert MEETING not in shown, "Bram did not sign up for the meeting"
        csrf = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
        assert csrf is not None

        subject, _, mac = valid.partition(".")
        bram_token = bram_link.rsplit("/", 1)[1]
        anna_manage = MANAGE_LINK.findall(text_of(platform.smtp.to(ANNA.email)[0]))[0]
        altered = {
            "MAC changed": f"{subject}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
            "truncated": valid[:-3],
            "extended": valid + "x",
            "validity moved": f"{subject[:-1]}{'f' if subject[-1] != 'f' else 'e'}.{mac}",
            "her id with his MAC": f"{anna_registration.hex}{bram_token[32:]}",
            "her manage token": anna_manage,
            "past its day": sign_until(
                platform.link_secret, DATA_EXPORT, anna_registration, time.time() - 60
            ),
        }
        for kind, token in altered.items():
            answer = await page.goto(f"{base}/registrations/gegevens/{token}")
            assert answer is not None
            assert answer.status == 404, (kind, answer.status)
            assert anna.found_in((await page.content()).encode()) == [], kind
            data_file = await page.request.get(
                f"{base}/registrations/gegevens/{token}/gegevens.json"
            )
            assert data_file.status == 404, (kind, data_file.status)
            assert anna.found_in(await data_file.body()) == [], kind
            erase = await page.request.post(
                f"{base}/registrations/gegevens/{token}/wissen",
                form={"csrf_token": csrf, "zeker": "ja"},
            )
            assert erase.status == 404, (kind, erase.status)
    finally:
        await context.close()

    # Her own link still works, and shows her: nothing was erased, the refusals were real.
    answer = await platform.gateway.get(f"/registrations/gegevens/{valid}/gegevens.json")
    assert answer.status_code == 200
    assert answer.json()["email"] == ANNA.email
    assert len(answer.json()["registrations"]) == 2


@pytest.mark.usefixtures("anna_watched")
async def test_the_internal_routes_are_refused_at_the_public_address_whatever_the_header(
    platform: Platform,
) -> None:
    """What the services ask each other about one person is never for the public address:
    the gateway refuses the routes with no header, a guessed one, or even the real one; under
    a path with dot segments the service itself refuses any header but the real one."""
    anna = Needles(strings_of(ANNA))
    registration = registration_of(platform, ANNA)
    key = person_key(platform.link_secret, ANNA.email)
    query = f"registration_id={registration}"
    routes = {
        "notifications": f"/internal/people/{key}?{query}",
        "analytics": f"/internal/people?{query}",
    }
    real = service_token(platform.link_secret)
    headers: list[dict[str, str]] = [
        {},
        {HEADER: "ja"},
        {HEADER: service_token("link-secret")},
        {HEADER: real},
    ]
    # The routes exist and hold her data: asked inside the network with the service token.
    async with httpx.AsyncClient(timeout=15) as inside:
        for service, route in routes.items():
            answer = await inside.get(
                platform.stack.service_url(service) + route, headers={HEADER: real}
            )
            assert answer.status_code == 200, (service, answer.status_code)
            assert anna.found_in(answer.content), service

    tried = 0
    for service, route in routes.items():
        for path in (
            f"/{service}{route}",
            f"/{service}/{route.replace('internal', 'Internal', 1).lstrip('/')}",
            f"/{service}/{route.replace('internal', 'internal%2F', 1).lstrip('/')}",
        ):
            for header in headers:
                answer = await platform.gateway.get(path, headers=header)
                tried += 1
                assert answer.status_code in (403, 404), (path, header, answer.status_code)
                assert anna.found_in(answer.content) == [], (path, header)
        for path in dot_segment_paths(service, route):
            for header in headers[:3]:  # the service itself refuses a guessed header
                answer = await platform.gateway.get(path, headers=header)
                tried += 1
                assert answer.status_code in (403, 404), (path, header, answer.status_code)
                assert anna.found_in(answer.content) == [], (path, header)
    assert tried >= 40


def dot_segment_paths(service: str, route: str) -> list[str]:
    """The route under another path that means the same once dot segments are resolved."""
    rest = route.lstrip("/")
    return [
        f"/{service}//{rest}",
        f"/{service}/./{rest}",
        f"/{service}/%2e/{rest}",
        f"/{service}/api/%2e%2e/{rest}",
        f"/{service}/x/%2E%2E/{rest}",
    ]


@pytest.mark.usefixtures("anna_watched")
async def test_dot_segments_do_not_smuggle_a_request_to_an_internal_route(
    platform: Platform,
) -> None:
    """Defence in depth: even a caller who holds the service token (a leaked secret) gets
    nothing internal through the public address, however the path is spelled."""
    anna = Needles(strings_of(ANNA))
    registration = registration_of(platform, ANNA)
    key = person_key(platform.link_secret, ANNA.email)
    real = {HEADER: service_token(platform.link_secret)}
    leaked = []
    for service, route in (
        ("notifications", f"/internal/people/{key}?registration_id={registration}"),
        ("analytics", f"/internal/people?registration_id={registration}"),
    ):
        for path in dot_segment_paths(service, route):
            answer = await platform.gateway.get(path, headers=real)
            if answer.status_code not in (403, 404) or anna.found_in(answer.content):
                leaked.append(f"{path}: {answer.status_code}")
    for service in ("events", "registrations", "notifications", "analytics"):
        for path in dot_segment_paths(service, "/metrics"):
            answer = await platform.gateway.get(path)
            if answer.status_code != 404 or b"stolive_" in answer.content:
                leaked.append(f"{path}: {answer.status_code}")
    assert leaked == []
