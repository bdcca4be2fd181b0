"""Organiser roles on the registrations pages and API, through the gateway of the whole
platform: a regional programme leader works on their own region's meetings only; check-in
staff check in at the one meeting they were given and see nothing more; and what organisers
do by hand (add a person, cancel, move one from the waiting list, correct, send again, undo
a check-in) reaches the people by e-mail and leaves its row in the audit log. Every refusal
leaves a denied row too."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx

from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually

MAIL_TIMEOUT_S = 60.0


async def attendee(platform: Platform, event_id: str, email: str) -> dict[str, Any]:
    """The person's row in the attendee list, as the programme team's API shows it."""
    listed = await platform.organiser_json(
        f"/registrations/api/organiser/events/{event_id}/attendees"
    )
    [row] = [a for a in listed["attendees"] if a["email"] == email]
    return dict(row)


async def signed_up(platform: Platform, event_id: str, person: Person) -> dict[str, Any]:
    await api_sign_up(platform, event_id, person)
    return await attendee(platform, event_id, person.email)


async def audit_of(platform: Platform, actor: str) -> list[dict[str, Any]]:
    """The audit rows the registrations service wrote of ``actor``, oldest first, read from
    ``organisers.audit`` itself (the events service logs the sign-in)."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT action, outcome, event_id::text AS event_id, subject, detail
               FROM organisers.audit WHERE actor = $1 AND service = 'registrations'
               ORDER BY id""",
            actor,
        )
    finally:
        await conn.close()
    return [{**dict(row), "detail": _detail(row["detail"])} for row in rows]


def _detail(stored: str) -> dict[str, Any]:
    """The row's detail: a plain connection (no codec) reads jsonb as its text."""
    detail = json.loads(stored)
    assert isinstance(detail, dict)
    return detail


async def mail(platform: Platform, address: str, subject: str) -> EmailMessage:
    """The e-mail to ``address`` whose subject starts with ``subject`` (waits for it)."""

    def found() -> EmailMessage | None:
        for email in platform.smtp.to(address):
            if str(email.message["subject"]).startswith(subject):
                return email.message
        return None

    message: EmailMessage = await eventually(
        found, timeout_s=MAIL_TIMEOUT_S, what=f"'{subject}' to {address}"
    )
    return message


def confirmations(platform: Platform, address: str, count: int) -> EmailMessage | None:
    """The latest of ``count`` confirmation e-mails to ``address``, once there are that many."""
    sent = [
        email.message
        for email in platform.smtp.to(address)
        if str(email.message["subject"]).startswith("Je bent aangemeld")
    ]
    return sent[-1] if len(sent) >= count else None


def csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text[:500]
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_regional_leader_checks_in_at_their_regions_meetings_and_nowhere_else(
    platform: Platform,
) -> None:
    ours = await published_meeting(platform, "Techniekmiddag Drenthe (rollen)", region="drenthe")
    theirs = await published_meeting(
        platform, "Techniekmiddag Groningen (rollen)", region="groningen"
    )
    anna = await signed_up(
        platform, ours, Person("Anna Roelofsma", "anna.roelofsma@esdal.example", "Esdal")
    )
    gijs = await signed_up(
        platform, theirs, Person("Gijs Wubbels", "gijs.wubbels@noorderpoort.example", "NP")
    )
    token = await platform.account_token("rita-regio", "regional", regions=("drenthe",))
    pages = "/registrations/organisator"
    api = "/registrations/api/organiser"

    async with platform.browser_as(token) as browser:
        index = await browser.get(f"{pages}/")
        own_page = await browser.get(f"{pages}/evenementen/{ours}")
        checked = await browser.post(
            f"{pages}/evenementen/{ours}/inchecken/{anna['id']}",
            data={"csrf_token": csrf(own_page)},
        )
        own_list = await browser.get(f"{api}/events/{ours}/attendees")
        other_page = await browser.get(f"{pages}/evenementen/{theirs}")
        other_check_in = await browser.post(
            f"{pages}/evenementen/{theirs}/inchecken/{gijs['id']}",
            data={"csrf_token": csrf(own_page)},
        )
    other_list = await platform.gateway.get(
        f"{api}/events/{theirs}/attendees", headers=bearer(token)
    )
    other_by_id = await platform.gateway.post(
        f"{api}/registrations/{gijs['id']}/check-in", headers=bearer(token)
    )

    assert index.status_code == 200
    assert "Techniekmiddag Drenthe (rollen)" in index.text
    assert "Techniekmiddag Groningen (rollen)" not in index.text
    assert "rita-regio · regionaal programmaleider" in index.text  # the console's header
    assert own_page.status_code == 200
    assert "Anna Roelofsma" in own_page.text
    assert "Download als CSV" in own_page.text
    assert checked.status_code == 303
    assert own_list.status_code == 200
    assert own_list.json()["counts"]["checked_in"] == 1
    assert other_page.status_code == 403
    assert "Geen toegang" in other_page.text
    assert "Gijs" not in other_page.text
    assert other_check_in.status_code == 403
    assert other_list.status_code == 403
    assert other_by_id.status_code == 403
    assert (await attendee(platform, theirs, gijs["email"]))["checked_in_at"] is None

    rows = await audit_of(platform, "rita-regio@sto.example")
    [check_in] = [r for r in rows if r["action"] == "check_in"]
    assert check_in["outcome"] == "done"
    assert (check_in["event_id"], check_in["subject"]) == (ours, f"registration:{anna['id']}")
    assert check_in["detail"] == {"via": "list"}
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert len(denied) == 4
    assert {r["event_id"] for r in denied} == {theirs}
    assert all("gijs" not in json.dumps(r).lower() for r in rows)


async def test_check_in_staff_check_in_at_their_meeting_and_may_do_nothing_else(
    platform: Platform,
) -> None:
    given = await published_meeting(platform, "Open dag Emmen (incheck)", region="drenthe")
    other = await published_meeting(platform, "Open dag Assen (incheck)", region="drenthe")
    bram = await signed_up(
        platform, given, Person("Bram Kuipers", "bram.kuipers@emmen.example", "Emmen College")
    )
    await signed_up(
        platform, other, Person("Cor Assink", "cor.assink@assen.example", "Assen College")
    )
    token = await platform.account_token("cees-incheck", "checkin", events=(given,))
    pages = "/registrations/organisator"
    api = "/registrations/api/organiser"
    newcomer = {
        "name": "Door Binnen",
        "email": "door.binnen@emmen.example",
        "organisation": "Emmen College",
        "role": "docent",
    }

    async with platform.browser_as(token) as browser:
        index = await browser.get(f"{pages}/")
        page = await browser.get(f"{pages}/evenementen/{given}")
        scanned = await browser.get(bram["check_in_url"])
        confirmed = await browser.post(bram["check_in_url"], data={"csrf_token": csrf(scanned)})
        csv_download = await browser.get(f"{api}/events/{given}/attendees.csv")
        other_page = await browser.get(f"{pages}/evenementen/{other}")
        added_by_form = await browser.post(
            f"{pages}/evenementen/{given}/aanmeldingen",
            data={**newcomer, "csrf_token": csrf(page)},
        )
        registration_page = await browser.get(
            f"{pages}/evenementen/{given}/aanmeldingen/{bram['id']}"
        )
        privacy = await browser.get(f"{pages}/privacy")
    refused = {
        "list": await platform.gateway.get(
            f"{api}/events/{given}/attendees", headers=bearer(token)
        ),
        "csv": await platform.gateway.get(
            f"{api}/events/{given}/attendees.csv", headers=bearer(token)
        ),
        "other list": await platform.gateway.get(
            f"{api}/events/{other}/attendees", headers=bearer(token)
        ),
        "add": await platform.gateway.post(
            f"{api}/events/{given}/registrations", json=newcomer, headers=bearer(token)
        ),
        "cancel": await platform.gateway.post(
            f"{api}/events/{given}/registrations/{bram['id']}/cancel", headers=bearer(token)
        ),
        "undo check-in": await platform.gateway.delete(
            f"{api}/events/{given}/registrations/{bram['id']}/check-in", headers=bearer(token)
        ),
        "resend": await platform.gateway.post(
            f"{api}/events/{given}/registrations/{bram['id']}/resend-confirmation",
            headers=bearer(token),
        ),
    }

    assert index.status_code == 200
    assert "Open dag Emmen (incheck)" in index.text
    assert "Open dag Assen" not in index.text
    assert "Inchecken per evenement" in index.text
    assert page.status_code == 200
    assert "Bram Kuipers" in page.text
    # What checking in needs, no more: no addresses, no CSV, nothing to manage.
    for absent in ("bram.kuipers@", "Download als CSV", "Beheren", "met de hand", "Mailing"):
        assert absent not in page.text, absent
    assert scanned.status_code == 200
    assert "Bram Kuipers" in scanned.text
    assert confirmed.status_code == 200
    assert "Bram Kuipers is ingecheckt" in confirmed.text
    assert (await attendee(platform, given, bram["email"]))["checked_in_at"] is not None
    assert csv_download.status_code == 403
    assert other_page.status_code == 403
    assert added_by_form.status_code == 403
    assert registration_page.status_code == 403
    assert privacy.status_code == 403
    assert {name: answer.status_code for name, answer in refused.items()} == dict.fromkeys(
        refused, 403
    )
    assert "door.binnen@emmen.example" not in {
        a["email"]
        for a in (await platform.organiser_json(f"{api}/events/{given}/attendees"))["attendees"]
    }

    rows = await audit_of(platform, "cees-incheck@sto.example")
    done = [(r["action"], r["subject"], r["detail"]) for r in rows if r["outcome"] == "done"]
    assert done == [("check_in", f"registration:{bram['id']}", {"via": "qr"})]
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert len(denied) == 5 + len(refused)
    wanted = {r["detail"].get("needs") for r in denied}
    assert {"view_registrations", "manage_registrations", "personal_data"} <= wanted
    assert other in {r["event_id"] for r in denied}  # the other meeting: out of scope


async def test_organisers_add_cancel_promote_correct_resend_and_undo_by_hand(
    platform: Platform,
) -> None:
    event_id = await published_meeting(platform, "Techniekcafé Hoogeveen (met de hand)", 2)
    first = await signed_up(
        platform, event_id, Person("Eva Mulder", "eva.mulder@hoogeveen.example", "RSG")
    )
    token = await platform.account_token("henk-hand", "regional", regions=("drenthe",))
    pages = f"/registrations/organisator/evenementen/{event_id}"
    api = f"/registrations/api/organiser/events/{event_id}/registrations"
    carla = {
        "name": "Carla de Boer",
        "email": "Carla.deBoer@hoogeveen.example",
        "organisation": "Hoogeveen College",
        "role": "docent",
        "region_code": "drenthe",
    }

    async with platform.browser_as(token) as browser:
        page = await browser.get(pages)
        token_of_page = csrf(page)
        wrong = await browser.post(
            f"{pages}/aanmeldingen",
            data={**carla, "name": "", "email": "carla@", "csrf_token": token_of_page},
        )
        twice = await browser.post(
            f"{pages}/aanmeldingen",
            data={**carla, "email": first["email"], "csrf_token": token_of_page},
        )
        added = await browser.post(
            f"{pages}/aanmeldingen", data={**carla, "csrf_token": token_of_page}
        )
        await mail(platform, "carla.deboer@hoogeveen.example", "Je bent aangemeld")
        waiting = await signed_up(
            platform, event_id, Person("Dirk Smit", "dirk.smit@hoogeveen.example", "RSG")
        )
        carla_row = await attendee(platform, event_id, "carla.deboer@hoogeveen.example")
        own = f"{pages}/aanmeldingen/{waiting['id']}"
        waiting_page = await browser.get(own)
        full = await browser.post(f"{own}/plaatsen", data={"csrf_token": token_of_page})
        promoted = await browser.post(
            f"{own}/plaatsen", data={"csrf_token": token_of_page, "boven_capaciteit": "ja"}
        )
        unsure = await browser.post(
            f"{pages}/aanmeldingen/{first['id']}/annuleren", data={"csrf_token": token_of_page}
        )
        cancelled = await browser.post(
            f"{pages}/aanmeldingen/{first['id']}/annuleren",
            data={"csrf_token": token_of_page, "zeker": "ja"},
        )
        checked_in = await browser.post(
            f"{pages}/inchecken/{carla_row['id']}", data={"csrf_token": token_of_page}
        )
        undone = await browser.post(
            f"{pages}/aanmeldingen/{carla_row['id']}/inchecken-ongedaan",
            data={"csrf_token": token_of_page},
        )
        bad_fix = await browser.post(
            f"{pages}/aanmeldingen/{carla_row['id']}/corrigeren",
            data={"csrf_token": token_of_page, "name": "Carla\nX", "organisation": "HC"},
        )
    corrected = await platform.gateway.patch(
        f"{api}/{carla_row['id']}",
        json={"name": "Carla de Boer-Jansen", "organisation": "Hoogeveen College", "role": "mbo"},
        headers=bearer(token),
    )
    resent = await platform.gateway.post(
        f"{api}/{carla_row['id']}/resend-confirmation", headers=bearer(token)
    )
    by_api = await platform.gateway.post(
        api,
        json={"name": "Frits Post", "email": "frits.post@hoogeveen.example", "role": "anders"},
        headers=bearer(token),
    )

    assert wrong.status_code == 422
    assert "Vul de naam in" in wrong.text
    assert "Vul een geldig e-mailadres in" in wrong.text
    assert 'value="carla@"' in wrong.text
    assert 'value="Hoogeveen College"' in wrong.text
    assert twice.status_code == 409
    assert "al aangemeld voor dit evenement" in twice.text
    assert added.status_code == 303
    assert "gedaan=toegevoegd" in added.headers["location"]
    assert carla_row["status"] == "confirmed"
    assert carla_row["name"] == "Carla de Boer"
    assert waiting["status"] == "waitlisted"
    assert "Van de wachtlijst plaatsen" in waiting_page.text
    assert full.status_code == 409
    assert "Er is geen plaats vrij" in full.text
    assert promoted.status_code == 303
    await mail(platform, waiting["email"], "Er is een plek vrij")
    assert unsure.status_code == 422
    assert "echt wilt annuleren" in unsure.text
    assert cancelled.status_code == 303
    await mail(platform, first["email"], "Je aanmelding is geannuleerd")
    assert (checked_in.status_code, undone.status_code) == (303, 303)
    assert bad_fix.status_code == 422
    assert "Vul de naam in" in bad_fix.text
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["name"], corrected.json()["role"]) == ("Carla de Boer-Jansen", "mbo")
    assert resent.status_code == 202
    # The confirmation again, to Carla herself, with her corrected name and the invitation.
    again = await eventually(
        lambda: confirmations(platform, "carla.deboer@hoogeveen.example", 2),
        timeout_s=MAIL_TIMEOUT_S,
        what="Carla's confirmation, sent again",
    )
    text = str(again.get_body(preferencelist=("plain",)))
    assert "/registrations/r/" in text
    assert "Carla de Boer-Jansen" in text
    assert any(part.get_content_type() == "text/calendar" for part in again.walk())
    # Carla and Dirk hold the two seats now: the next one added waits, as a sign-up would.
    assert by_api.status_code == 201
    assert by_api.json()["status"] == "waitlisted"
    await mail(platform, "frits.post@hoogeveen.example", "Je staat op de wachtlijst")
    after = await platform.organiser_json(
        f"/registrations/api/organiser/events/{event_id}/attendees"
    )
    statuses = {a["email"]: a["status"] for a in after["attendees"]}
    assert statuses == {
        first["email"]: "cancelled",
        "carla.deboer@hoogeveen.example": "confirmed",
        waiting["email"]: "confirmed",
        "frits.post@hoogeveen.example": "waitlisted",
    }
    assert after["counts"]["checked_in"] == 0

    rows = await audit_of(platform, "henk-hand@sto.example")
    done = [(r["action"], r["subject"]) for r in rows if r["outcome"] == "done"]
    subject = {
        "carla": f"registration:{carla_row['id']}",
        "dirk": f"registration:{waiting['id']}",
        "eva": f"registration:{first['id']}",
    }
    assert done[:-1] == [
        ("registration_added", subject["carla"]),
        ("registration_promoted", subject["dirk"]),
        ("registration_cancelled", subject["eva"]),
        ("check_in", subject["carla"]),
        ("check_in_undone", subject["carla"]),
        ("registration_corrected", subject["carla"]),
        ("confirmation_resent", subject["carla"]),
    ]
    assert done[-1] == ("registration_added", f"registration:{by_api.json()['id']}")
    assert all(r["event_id"] == event_id for r in rows)
    by_action = {r["action"]: r["detail"] for r in rows}
    assert by_action["registration_promoted"] == {"over_capacity": True}
    assert by_action["registration_corrected"] == {"fields": ["name", "role"]}
    assert all(r["outcome"] == "done" for r in rows)
    assert "carla" not in json.dumps(rows).lower()  # ids, not addresses or names
