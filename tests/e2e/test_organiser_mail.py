"""What the notifications service does for organisers, from outside (real processes, the
gateway, a real SMTP server): a regional programme leader drafts mailings to the people of
their own region's events, chosen from lists, and is refused (403, with a row in the audit
log) for another region's event and for all subscribers; support may not open the mailings
at all. And the sign-in e-mail: the events service's internal call puts a one-time link that
works in the account's own mailbox, and nothing in anyone else's.
"""

from __future__ import annotations

import re

import asyncpg
import httpx

from stolive_shared.internal import HEADER, service_token
from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually

LEADER = "leider-mailings@sto.example"


async def audit_rows(platform: Platform, actor: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT service, action, outcome, event_id, subject FROM organisers.audit"
            " WHERE actor = $1 ORDER BY id",
            actor,
        )
        return rows
    finally:
        await conn.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has a form with a CSRF token"
    return found.group(1)


async def test_a_regional_leader_mails_their_own_region_only(platform: Platform) -> None:
    ours = await published_meeting(platform, "Mailmiddag Drenthe", region="drenthe")
    theirs = await published_meeting(platform, "Mailmiddag Twente", region="twente")
    leader = await platform.account_token("leider-mailings", "regional", regions=("drenthe",))
    support = await platform.account_token("support-mailings", "support")
    new = f"/notifications/organisator/mailings/nieuw?evenement={ours}&groep=registered"

    async with platform.browser_as(leader) as browser:

        async def form_lists_our_event() -> str | None:
            form = await browser.get(new)
            assert form.status_code == 200, form.text
            return form.text if "Mailmiddag Drenthe" in form.text else None

        form = await eventually(form_lists_our_event, what="the event's copy in notifications")
        assert "Mailmiddag Twente" not in form
        assert re.search(rf'<option value="{ours}" selected>', form), "pre-filled from the link"
        assert re.search(r'value="registrants" checked', form)
        assert re.search(r'name="regions" value="drenthe" checked><label for="g-1">Drenthe<', form)
        assert 'value="twente"' not in form

        fields = {"csrf_token": csrf_of(form), "subject": "Tot de mailmiddag!", "body": "Welkom."}
        drafted = await browser.post(
            "/notifications/organisator/mailings",
            data={**fields, "audience_kind": "registrants", "event_id": ours},
        )
        assert drafted.status_code == 303, drafted.text
        other_region = await browser.post(
            "/notifications/organisator/mailings",
            data={**fields, "audience_kind": "registrants", "event_id": theirs},
        )
        assert other_region.status_code == 403
        assert "Geen toegang" in other_region.text
        everyone = await browser.post(
            "/notifications/organisator/mailings", data={**fields, "audience_kind": "subscribers"}
        )
        assert everyone.status_code == 403

        listed = await browser.get("/notifications/organisator/mailings")
        assert listed.status_code == 200
        assert "Tot de mailmiddag!" in listed.text
        assert "Mailings" in listed.text  # the console header

    by_script = await platform.gateway.post(
        "/notifications/api/mailings",
        headers={"Authorization": f"Bearer {leader}"},
        json={"subject": "x", "body": "y", "audience": {"kind": "no_shows", "event_id": theirs}},
    )
    assert by_script.status_code == 403

    async with platform.browser_as(support) as browser:
        refused = await browser.get("/notifications/organisator/mailings")
        assert refused.status_code == 403
        assert "Geen toegang" in refused.text

    rows = await audit_rows(platform, LEADER)
    assert ("notifications", "mailing_saved", "done") in [
        (r["service"], r["action"], r["outcome"]) for r in rows
    ]
    denied = [r for r in rows if r["outcome"] == "denied" and r["service"] == "notifications"]
    assert len(denied) == 3, denied
    assert sum(str(r["event_id"]) == theirs for r in denied) == 2
    support_rows = await audit_rows(platform, "support-mailings@sto.example")
    assert ("notifications", "access", "denied") in [
        (r["service"], r["action"], r["outcome"]) for r in support_rows
    ]


def sign_in_link(platform: Platform, address: str) -> str | None:
    for email in platform.smtp.to(address):
        body = email.message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""
        link = re.search(r"https?://\S+/events/organiser/inloggen/link/[A-Za-z0-9_-]+", text)
        if link and "Heb je dit niet aangevraagd? Dan kun je deze e-mail negeren." in text:
            return link.group(0)
    return None


async def test_the_sign_in_mail_brings_a_working_link_to_the_account_only(
    platform: Platform,
) -> None:
    address = "inlog-mail@sto.example"
    await platform.account_token("inlog-mail", "support")
    notifications = platform.stack.service_url("notifications")
    route = f"{notifications}/internal/organiser-sign-in"
    token = {HEADER: service_token(platform.link_secret)}
    async with httpx.AsyncClient(timeout=15) as service:
        unknown = await service.post(route, json={"email": "onbekend@sto.example"}, headers=token)
        known = await service.post(route, json={"email": address.upper()}, headers=token)
        without = await service.post(route, json={"email": address})
        forged = await service.post(
            route, json={"email": address}, headers={HEADER: service_token("geraden")}
        )
    assert (unknown.status_code, unknown.json()) == (202, {"queued": False})
    assert (known.status_code, known.json()) == (202, {"queued": True})
    assert without.status_code == forged.status_code == 404
    from_outside = await platform.gateway.post(
        "/notifications/internal/organiser-sign-in", json={"email": address}, headers=token
    )
    assert from_outside.status_code == 404

    link = await eventually(lambda: sign_in_link(platform, address), what="the sign-in e-mail")
    [email] = platform.smtp.to(address)
    assert email.subject == "Inloggen bij STO Live"
    assert platform.smtp.to("onbekend@sto.example") == []

    base = platform.stack.config.public_base_url
    async with httpx.AsyncClient(base_url=base, timeout=15) as phone:
        opened = await phone.get(link)
        assert opened.status_code == 200
        used = await phone.post(link, data={"csrf_token": csrf_of(opened.text)})
        assert used.status_code == 303, used.text
        console = await phone.get("/events/organiser/")
        assert console.status_code == 200
        assert "ondersteuning" in console.text
        again = await phone.post(link, data={"csrf_token": csrf_of(opened.text)})
        assert again.status_code == 410  # once
    sent = [r["action"] for r in await audit_rows(platform, address)]
    assert "sign_in_link_sent" in sent
