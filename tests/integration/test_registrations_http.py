"""The registrations service's HTTP face on a real PostgreSQL: the form without JavaScript
(colleagues, honeypot, line breaks, rate limit), the JSON API and its OpenAPI description,
the organisers' lists, CSV for Dutch Excel, check-in by QR code, and privacy requests."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import segno

from sto_registrations import repository
from sto_registrations.bootstrap import DEFINITION
from sto_registrations.config import RegistrationsSettings
from sto_registrations.domain import Applicant
from sto_registrations.service import RegistrationsService
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.runtime import Runtime
from tests.support import eventually, form_token, organiser_session

SECRET = "integration-test-link-secret"


@dataclass
class Site:
    client: httpx.AsyncClient
    organiser: httpx.AsyncClient  # logged in with the site-wide organiser session
    service: RegistrationsService

    async def event(self, **changes: Any) -> uuid.UUID:
        starts = datetime.now(UTC) + timedelta(days=10)
        fields: dict[str, Any] = {
            "event_id": uuid.uuid4(),
            "revision": 1,
            "kind": "regional_meeting",
            "status": "published",
            "title": "Regiobijeenkomst Zuid-Holland",
            "starts_at": starts,
            "ends_at": starts + timedelta(hours=3),
            "capacity": 30,
            "waitlist_enabled": True,
        }
        fields.update(changes)
        async with self.service.store.transaction() as registrations:
            await self.service.apply_event(registrations, EventSnapshot(**fields))
        event_id: uuid.UUID = fields["event_id"]
        return event_id

    async def mailed_manage_path(self, event_id: uuid.UUID, email: str) -> str:
        """The manage link the person's confirmation carries (as a path on this site): what
        their mailbox would hold (the end-to-end suites read the real e-mail)."""
        for registration in await self.service.attendees(event_id):
            if registration.applicant.email == email:
                return f"/r/{self.service.manage_token(registration.id)}"
        raise AssertionError(f"{email} is not registered")

    async def api_token(self, event_id: uuid.UUID) -> str:
        """A form token for the JSON API (its bot guard; usable at once in this module)."""
        return await form_token(self.client, "", event_id)

    async def form_token(self, event_id: uuid.UUID) -> str:
        page = await self.client.get(f"/events/{event_id}/aanmelden")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        return match.group(1)


@pytest.fixture(scope="module")
async def site(database_url: str) -> AsyncIterator[Site]:
    await apply_migrations(database_url, "registrations", [DEFINITION.migrations])
    settings = RegistrationsSettings(
        database_url=database_url,
        link_secret=SECRET,
        public_base_url="http://sto.test",
        events_api_url="http://127.0.0.1:9",  # nobody there: no regions, no bearer tokens
        # This service alone: an export holds its own data (tests/privacy gathers them all).
        notifications_api_url="",
        analytics_api_url="",
        signup_rate_per_minute=600,
        signup_rate_burst=40,
        signup_form_token_min_age_s=0,
    )
    pool = await create_pool(database_url, "registrations", max_size=4)
    app = DEFINITION.app(Runtime(settings=settings, pool=pool))
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 40000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://sto.test") as client,
        httpx.AsyncClient(
            transport=transport,
            base_url="http://sto.test",
            cookies=await organiser_session(app),
        ) as organiser,
    ):
        yield Site(client, organiser, app.state.registrations)
    await app.state.registrations.close()
    await pool.close()


def form(token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "name": "Chris Jansen",
        "email": "chris@wellant.nl",
        "organisation": "Wellant College",
        "role": "docent",
        "consent": "ja",
        **fields,
    }


async def test_a_teacher_adds_colleagues_without_javascript_and_each_is_registered(
    site: Site,
) -> None:
    event_id = await site.event()
    token = await site.form_token(event_id)
    first = await site.client.get(f"/events/{event_id}/aanmelden")
    assert "Naam van collega 1" not in first.text

    more = await site.client.post(
        f"/events/{event_id}/aanmelden", data=form(token, actie="collegas")
    )
    assert more.status_code == 200
    assert "Naam van collega 3" in more.text
    assert 'value="Chris Jansen"' in more.text  # what was typed stays

    answer = await site.client.post(
        f"/events/{event_id}/aanmelden",
        data=form(
            token,
            collega_rijen="3",
            colleague_name_1="Dana Vos",
            colleague_email_1="dana@wellant.nl",
            colleague_role_1="schoolleider",
            colleague_name_2="Emre Yilmaz",
            colleague_email_2="emre@wellant.nl",
        ),
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/events/{event_id}/ontvangen"
    page = await site.client.get(answer.headers["location"])
    assert "Kijk in je mail" in page.text
    registered = await site.service.attendees(event_id)
    assert [r.applicant.email for r in registered] == [
        "chris@wellant.nl",
        "dana@wellant.nl",
        "emre@wellant.nl",
    ]
    assert len({r.group_id for r in registered}) == 1
    assert {r.applicant.organisation for r in registered} == {"Wellant College"}

    # The booker sees and manages, from their own link, the colleagues they signed up.
    chris = await site.mailed_manage_path(event_id, "chris@wellant.nl")
    mine = await eventually(
        lambda: _when(site.client.get(chris), lambda page: "Dana Vos: Aangemeld" in page.text),
        what="the booker's page to list the colleagues",
    )
    assert "Emre Yilmaz: Aangemeld" in mine.text
    dana = next(r for r in registered if r.applicant.name == "Dana Vos")
    # Someone else's link cannot cancel Dana: only her booker's (or her own).
    emre = await site.mailed_manage_path(event_id, "emre@wellant.nl")
    stranger = await site.client.post(
        f"{emre}/collegas/{dana.id}/annuleren", data={"csrf_token": token}
    )
    assert stranger.status_code == 404
    cancelled = await site.client.post(
        f"{chris}/collegas/{dana.id}/annuleren", data={"csrf_token": token}
    )
    assert cancelled.status_code == 303
    after = await site.client.get(cancelled.headers["location"])
    assert "De aanmelding van je collega is geannuleerd" in after.text
    assert "Dana Vos: Geannuleerd" in after.text
    assert (await site.service.get(dana.id))[0].status == "cancelled"


async def _when(value: Any, condition: Any) -> Any:
    found = await value
    return found if condition(found) else None


async def test_a_colleague_row_with_a_bad_address_is_explained_next_to_it(site: Site) -> None:
    event_id = await site.event()
    token = await site.form_token(event_id)

    answer = await site.client.post(
        f"/events/{event_id}/aanmelden",
        data=form(token, collega_rijen="3", colleague_name_2="Fleur", colleague_email_2="fleur"),
    )

    assert answer.status_code == 422
    assert 'id="colleague_email_2"' in answer.text
    assert "Collega 2: Vul een geldig e-mailadres in" in answer.text
    assert await site.service.attendees(event_id) == []


async def test_a_bot_filling_the_honeypot_is_not_registered(site: Site) -> None:
    event_id = await site.event()
    token = await site.form_token(event_id)

    answer = await site.client.post(
        f"/events/{event_id}/aanmelden", data=form(token, website="http://spam.example")
    )

    assert answer.status_code == 422
    assert await site.service.attendees(event_id) == []


async def test_line_breaks_in_names_and_unbounded_fields_are_refused_by_the_api(
    site: Site,
) -> None:
    event_id = await site.event()
    url = f"/api/events/{event_id}/registrations"
    body = {
        "name": "Gijs",
        "email": "gijs@school.nl",
        "role": "docent",
        "privacy_consent": True,
        "form_token": await site.api_token(event_id),
    }

    injected = await site.client.post(url, json={**body, "name": "Gijs\r\nBcc: all@x.nl"})
    nul = await site.client.post(url, json={**body, "name": "Gijs\u0000"})
    long_name = await site.client.post(url, json={**body, "name": "G" * 121})
    no_consent = await site.client.post(url, json={**body, "privacy_consent": False})
    eleven = await site.client.post(
        url,
        json={
            **body,
            "colleagues": [{"name": f"C {n}", "email": f"c{n}@school.nl"} for n in range(11)],
        },
    )

    assert [r.status_code for r in (injected, nul, long_name, no_consent, eleven)] == [422] * 5
    assert await site.service.attendees(event_id) == []


async def test_a_school_not_in_the_list_is_refused_in_dutch_by_form_and_api(site: Site) -> None:
    """The events service is away here, so this process knows no school sites: the form
    offers the text field alone, and a chosen code cannot be checked, so it is refused."""
    event_id = await site.event()
    page = await site.client.get(f"/events/{event_id}/aanmelden")
    assert 'name="school_code"' not in page.text
    assert "School of organisatie" in page.text
    url = f"/api/events/{event_id}/registrations"
    body = {
        "name": "Gijs",
        "email": "gijs@school.nl",
        "role": "docent",
        "privacy_consent": True,
        "form_token": await site.api_token(event_id),
    }

    fast = await site.client.post(url, json={**body, "school_code": "99ZZ00"})
    routed = await site.client.post(
        url,
        content=json.dumps({**body, "school_code": "nonsense"}).encode(),
        headers={"Content-Type": "application/x-sto+json"},
    )
    typed = await site.client.post(
        f"/events/{event_id}/aanmelden",
        data=form(await site.form_token(event_id), school_code="99ZZ00"),
    )
    other = await site.client.post(url, json={**body, "school_code": "anders"})

    for refused in (fast, routed):
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["detail"]
        assert problem["loc"] == ["body", "school_code"]
        assert problem["msg"].startswith("Kies je school uit de lijst")
    assert typed.status_code == 422
    assert "Kies je school uit de lijst" in typed.text
    assert other.status_code == 202  # "another school": the typed name, no code
    [registration] = await site.service.attendees(event_id)
    assert registration.applicant.school_code is None


async def test_the_sign_up_fast_path_answers_as_the_fastapi_route_does(site: Site) -> None:
    """``application/json`` sign-ups take the fast path (api/fast_sign_up.py); ``+json`` ones
    take FastAPI's route: the answers must not tell them apart."""
    event_id = await site.event()
    url = f"/api/events/{event_id}/registrations"
    body = {
        "name": "Lot",
        "email": "lot@school.nl",
        "role": "docent",
        "privacy_consent": True,
        "form_token": await site.api_token(event_id),
    }

    async def both(payload: bytes, path: str = url) -> tuple[httpx.Response, httpx.Response]:
        fast = await site.client.post(
            path, content=payload, headers={"Content-Type": "application/json"}
        )
        routed = await site.client.post(
            path, content=payload, headers={"Content-Type": "application/x-sto+json"}
        )
        return fast, routed

    def payload(**changes: Any) -> bytes:
        return json.dumps({**body, **changes}).encode()

    fast, routed = await both(payload(email="lot1@school.nl"))
    assert (fast.status_code, routed.status_code) == (202, 202)
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.json() == routed.json()
    # A repeat is answered exactly like a first sign-up: no token, no hint.
    again, routed_again = await both(payload(email="lot1@school.nl"))
    assert (again.status_code, routed_again.status_code) == (202, 202)
    assert again.json() == routed_again.json() == fast.json()
    for refused in (
        payload(name="Lot\r\nBcc: all@x.nl"),
        payload(privacy_consent=False),
        payload(form_token="123.forged"),
        payload(form_token=""),
        payload(form_token=await site.api_token(await site.event())),  # another event's
        b'{"name": "Lot", "email": ',
        b"[]",
    ):
        fast, routed = await both(refused)
        assert (fast.status_code, fast.json()) == (routed.status_code, routed.json())
        assert fast.status_code == 422
    # No event has that id, so no form token is ever for it: refused before the database.
    fast, routed = await both(payload(), f"/api/events/{uuid.uuid4()}/registrations")
    assert (fast.status_code, fast.json()) == (routed.status_code, routed.json())
    assert fast.status_code == 422
    assert (await site.client.get(f"/api/events/{uuid.uuid4()}/form-token")).status_code == 404
    # A byte-order mark: pydantic's parser refuses it, so FastAPI takes it (and accepts it).
    marked = await site.client.post(
        url,
        content=b"\xef\xbb\xbf" + payload(email="lot2@school.nl"),
        headers={"Content-Type": "application/json"},
    )
    assert marked.status_code == 202


async def test_the_api_signs_up_colleagues_and_answers_full_or_closed_clearly(
    site: Site,
) -> None:
    event_id = await site.event(capacity=2, waitlist_enabled=False)
    url = f"/api/events/{event_id}/registrations"
    body = {
        "name": "Hanna de Wit",
        "email": "hanna@school.nl",
        "role": "docent",
        "organisation": "Lyceum Oudehoven",
        "privacy_consent": True,
        "form_token": await site.api_token(event_id),
        "colleagues": [
            {"name": "Ivo Smit", "email": "ivo@school.nl"},
            {"name": "Jet Kok", "email": "jet@school.nl"},
        ],
    }

    answer = await site.client.post(url, json=body)
    again = await site.client.post(url, json={**body, "colleagues": []})
    full = await site.client.post(url, json={**body, "email": "kees@school.nl", "colleagues": []})
    closed_id = await site.event(registration_closes_at=datetime.now(UTC) - timedelta(hours=1))
    closed = await site.client.post(
        f"/api/events/{closed_id}/registrations",
        json={**body, "form_token": await site.api_token(closed_id)},
    )

    assert answer.status_code == 202
    outcome = answer.json()
    assert outcome["received"] == 3
    assert "Kijk in je mail" in outcome["message"]
    assert outcome["colleagues"] == [
        {"email": "ivo@school.nl", "refused": None},
        {"email": "jet@school.nl", "refused": "Dit evenement is vol."},
    ]
    assert "token" not in answer.text
    # Hanna (registered) and Kees (not) hear the same about the now full event.
    assert (full.status_code, full.json()["detail"]) == (409, "Dit evenement is vol.")
    assert (again.status_code, again.json()) == (full.status_code, full.json())
    assert (closed.status_code, closed.json()["detail"]) == (410, "De aanmelding is gesloten.")
    statuses = {r.applicant.email: r.status for r in await site.service.attendees(event_id)}
    assert statuses == {"hanna@school.nl": "confirmed", "ivo@school.nl": "confirmed"}


async def test_sign_ups_from_one_address_are_limited_across_replicas_others_carry_on(
    site: Site, database_url: str
) -> None:
    """Two API replicas on one database, as behind a load balancer: one budget per address
    (the limit lives in PostgreSQL), and another address has its own."""
    event_id = await site.event(capacity=None)
    url = f"/api/events/{event_id}/registrations"
    settings = RegistrationsSettings(
        database_url=database_url,
        link_secret=SECRET,
        session_secret=SECRET,
        public_base_url="http://sto.test",
        events_api_url="http://127.0.0.1:9",
        signup_rate_per_minute=60,
        signup_rate_burst=5,
        signup_form_token_min_age_s=0,
    )
    pools = [await create_pool(database_url, "registrations", max_size=2) for _ in range(2)]
    replicas = [DEFINITION.app(Runtime(settings=settings, pool=pool)) for pool in pools]
    try:

        def client(app: Any, address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://sto.test")

        flooder = [client(app, "203.0.113.66") for app in replicas]
        other = client(replicas[1], "192.0.2.4")
        token = await form_token(flooder[0], "", event_id)

        def body(n: int) -> dict[str, Any]:
            return {
                "name": f"Bot {n}",
                "email": f"bot{n}@spam.example",
                "role": "anders",
                "privacy_consent": True,
                "form_token": token,
            }

        # What a client claims in X-Forwarded-For is not its address (only a trusted
        # proxy's word counts, and uvicorn applies that before the app sees the request).
        claims = {"X-Forwarded-For": "10.0.0.1"}
        answers = [await flooder[n % 2].post(url, json=body(n), headers=claims) for n in range(8)]
        elsewhere = await other.post(url, json=body(99))
    finally:
        for app in replicas:
            await app.state.registrations.close()
        for pool in pools:
            await pool.close()

    assert [a.status_code for a in answers] == [202] * 5 + [429] * 3
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "Te veel aanmeldingen" in answers[-1].json()["detail"]
    assert elsewhere.status_code == 202


async def test_a_waitlisted_person_leaves_the_list_from_their_page(site: Site) -> None:
    event_id = await site.event(capacity=1)
    await site.service.sign_up(
        event_id, Applicant("Lars Bos", "lars@school.nl", "", "docent", None)
    )
    token = await site.form_token(event_id)
    answer = await site.client.post(
        f"/events/{event_id}/aanmelden", data=form(token, email="mila@school.nl", name="Mila")
    )
    assert answer.status_code == 303
    manage = await site.mailed_manage_path(event_id, "mila@school.nl")
    page = await site.client.get(manage)
    assert "plaats 1 op de wachtlijst" in page.text

    left = await site.client.post(f"{manage}/annuleren", data={"csrf_token": token})

    assert left.status_code == 303
    after = await site.client.get(left.headers["location"])
    assert "Je staat niet meer op de wachtlijst" in after.text
    counts = await site.service.counts(event_id)
    assert (counts["confirmed"], counts["waitlisted"]) == (1, 0)


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules of a segno SVG (a path of horizontal runs), without the border."""
    path = re.search(r' d="([^"]+)"', svg)
    assert path is not None
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(x) + i - 4, int(y) - 4) for i in range(int(a)))
            x += float(a)
    return dark


async def test_the_confirmation_qr_code_opens_check_in_for_organisers_only(site: Site) -> None:
    event_id = await site.event()
    token = await site.form_token(event_id)
    answer = await site.client.post(
        f"/events/{event_id}/aanmelden", data=form(token, email="noor@school.nl", name="Noor")
    )
    assert answer.status_code == 303
    manage = await site.mailed_manage_path(event_id, "noor@school.nl")
    page = await site.client.get(manage)
    assert f'src="{manage}/qr.svg"' in page.text

    svg = await site.client.get(f"{manage}/qr.svg")
    [registration] = await site.service.attendees(event_id)
    check_in_url = site.service.check_in_url(registration.id)
    expected = segno.make(check_in_url, error="m")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert qr_modules(svg.text) == {
        (x, y) for y, row in enumerate(expected.matrix) for x, dark in enumerate(row) if dark
    }

    path = check_in_url.removeprefix("http://sto.test/registrations")
    anonymous = await site.client.get(path)
    assert anonymous.status_code == 303  # to the login page, and back here after it
    assert anonymous.headers["location"] == f"/events/organiser/inloggen?volgende={path}"
    shown = await site.organiser.get(path)
    assert "Noor" in shown.text
    assert (await site.service.counts(event_id))["checked_in"] == 0  # opening is not checking in

    organiser_token = re.search(r'name="csrf_token" value="([^"]+)"', shown.text)
    assert organiser_token is not None
    done = await site.organiser.post(path, data={"csrf_token": organiser_token.group(1)})

    assert "Noor is ingecheckt" in done.text
    assert (await site.service.counts(event_id))["checked_in"] == 1


async def test_organisers_filter_count_check_in_and_export_for_dutch_excel(site: Site) -> None:
    event_id = await site.event(capacity=2, title="Regio West: =techniek")
    people = [
        Applicant("Olga Mertens", "olga@a.nl", '=HYPERLINK("x")', "docent", "west"),
        Applicant("Piet Zwart", "piet@b.nl", "Bedrijf BV", "bedrijfsleven", "oost"),
        Applicant("Ria Dekker", "ria@c.nl", "Vakcollege", "docent", "west"),
    ]
    for applicant in people:
        await site.service.sign_up(event_id, applicant)
    api = f"/api/organiser/events/{event_id}"

    assert (await site.client.get(f"{api}/attendees")).status_code == 401
    docents = await site.organiser.get(f"{api}/attendees", params={"role": "docent"})
    waiting = await site.organiser.get(f"{api}/attendees", params={"status": "waitlisted"})
    east = await site.organiser.get(f"{api}/attendees", params={"region": "oost"})
    olga = docents.json()["attendees"][0]["id"]
    checked = await site.organiser.post(f"/api/organiser/registrations/{olga}/check-in")
    ria = docents.json()["attendees"][1]["id"]
    refused = await site.organiser.post(f"/api/organiser/registrations/{ria}/check-in")
    exported = await site.organiser.get(f"{api}/attendees.csv")

    assert [a["name"] for a in docents.json()["attendees"]] == ["Olga Mertens", "Ria Dekker"]
    assert [a["name"] for a in waiting.json()["attendees"]] == ["Ria Dekker"]
    assert [a["name"] for a in east.json()["attendees"]] == ["Piet Zwart"]
    assert docents.json()["counts"]["confirmed"] == 2
    assert checked.json()["checked_in_at"] is not None
    assert refused.status_code == 409
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        'filename="deelnemers-regio-west-techniek.csv"' in exported.headers["content-disposition"]
    )
    raw = exported.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Naam", "E-mailadres", "School of organisatie"]
    assert rows[1][2] == '\'=HYPERLINK("x")'
    assert [r[6] for r in rows[1:]] == ["Aangemeld", "Aangemeld", "Wachtlijst"]
    assert rows[1][8] != ""  # Olga's check-in time

    page = await site.organiser.get(
        f"/organisator/evenementen/{event_id}", params={"rol": "docent"}
    )
    assert "Olga Mertens" in page.text
    assert "Piet Zwart" not in page.text
    assert "Ingecheckt: 1" in page.text


async def test_privacy_export_and_erasure_through_the_organiser_api(site: Site) -> None:
    event_id = await site.event()
    await site.service.sign_up(event_id, Applicant("Sara Lee", "sara@x.nl", "X", "mbo", None))
    body = {"email": "SARA@x.nl"}

    anonymous = await site.client.post("/api/organiser/privacy/export", json=body)
    exported = await site.organiser.post("/api/organiser/privacy/export", json=body)
    erased = await site.organiser.post("/api/organiser/privacy/erase", json=body)
    after = await site.organiser.post("/api/organiser/privacy/export", json=body)

    assert anonymous.status_code == 401
    [record] = exported.json()["registrations"]
    assert (record["name"], record["role"]) == ("Sara Lee", "mbo")
    assert len(erased.json()["erased_registrations"]) == 1
    assert after.json()["registrations"] == []
    async with site.service.pool.acquire() as conn:
        assert (await repository.status_counts(conn, event_id))["confirmed"] == 1


async def test_the_openapi_description_covers_the_api_and_not_the_pages(site: Site) -> None:
    spec = (await site.client.get("/openapi.json")).json()

    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    assert not any(
        path.startswith(("/events/", "/r/", "/organisator")) for path, _, _ in operations
    )
    assert all(operation.get("summary") for _, _, operation in operations)
    sign_up = spec["paths"]["/api/events/{event_id}/registrations"]["post"]
    assert {"202", "404", "409", "410", "422", "429"} <= set(sign_up["responses"])
    fields = spec["components"]["schemas"]["SignUp"]["properties"]
    assert fields["name"]["maxLength"] == 120
    assert fields["email"]["format"] == "email"
    assert fields["colleagues"]["maxItems"] == 10
    for listing in ("attendees", "attendees.csv"):
        operation = spec["paths"][f"/api/organiser/events/{{event_id}}/{listing}"]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {
            "event_id",
            "status",
            "region",
            "role",
        }


async def test_forged_links_and_odd_filters_get_clean_answers_not_server_errors(
    site: Site,
) -> None:
    event_id = await site.event()

    forged = [
        await site.client.get(f"/api/registrations/{token}")
        for token in ("é.x", "0" * 32 + ".abc", "x" * 5000)
    ]
    qr = await site.client.get("/r/é.x/qr.svg")
    odd_filter = await site.organiser.get(
        f"/api/organiser/events/{event_id}/attendees", params={"region": "a\x00b", "role": "?"}
    )

    assert [answer.status_code for answer in forged] == [404, 404, 404]
    assert qr.status_code == 404
    assert odd_filter.status_code == 200
