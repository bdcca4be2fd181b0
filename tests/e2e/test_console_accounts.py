"""Organiser accounts, from outside: the programme team adds a regional programme leader on
the accounts page; the leader signs in with an e-mailed one-time link in a real browser, sees
and changes only their own region's events, is refused (403 and an audit row) for another
region's, by hand-typed URL and by API alike; removing the account ends its session and its
token at once; the audit page shows all of it to the programme team only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from stolive.stack import DEMO_ORGANISER
from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually, serious_accessibility_violations

LEADER = "leider.drenthe@sto.example"


async def audit_rows(platform: Platform, actor: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT action, outcome, event_id, subject, detail FROM organisers.audit"
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


def sign_in_link(platform: Platform, address: str) -> str | None:
    for email in reversed(platform.smtp.to(address)):
        body = email.message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""
        link = re.search(r"https?://\S+/events/organiser/inloggen/link/[A-Za-z0-9_-]+", text)
        if link:
            return link.group(0)
    return None


async def test_a_regional_leader_signs_in_by_link_and_sees_only_their_region(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    base = platform.stack.config.public_base_url
    ours = await published_meeting(platform, "Techniekmiddag Drenthe", region="drenthe")
    theirs = await published_meeting(platform, "Techniekmiddag Twente", region="twente")

    # The programme team adds the account on the accounts page.
    async with platform.organiser_browser() as team:
        page = await team.get("/events/organiser/accounts")
        assert page.status_code == 200
        typo = await team.post(
            "/events/organiser/accounts",
            data={"csrf_token": csrf_of(page.text), "email": "geen-adres", "name": "",
                  "role": "regional"},
        )  # fmt: skip
        assert typo.status_code == 422
        assert "Vul een geldig e-mailadres in." in typo.text
        assert "Kies minstens één regio" in typo.text
        added = await team.post(
            "/events/organiser/accounts",
            data={"csrf_token": csrf_of(page.text), "email": LEADER,
                  "name": "Leider Drenthe", "role": "regional", "regions": "drenthe"},
        )  # fmt: skip
        assert added.status_code == 200, added.text
        assert "regionaal programmaleider" in added.text

    asking = await browser.new_context()
    opening = await browser.new_context()
    try:
        # The leader asks for a link in one browser ...
        page = await asking.new_page()
        await page.goto(f"{base}/events/organiser/inloggen")
        await page.get_by_label("E-mailadres").fill(LEADER)
        await page.get_by_role("button", name="Stuur mij een inloglink").click()
        await page.get_by_text("staat er nu een inloglink in die mailbox").wait_for()
        assert await serious_accessibility_violations(page) == []
        link = await eventually(lambda: sign_in_link(platform, LEADER), what="the sign-in link")

        # ... and opens it on another (their phone): opening alone uses nothing up.
        phone = await opening.new_page()
        await phone.goto(link)
        await phone.goto(link)
        await phone.get_by_role("button", name="Inloggen").click()
        await phone.wait_for_url(f"{base}/events/organiser/")
        header = await phone.locator("header.console").inner_text()
        assert "Leider Drenthe" in header
        assert "regionaal programmaleider" in header
        assert "Accounts" not in header
        assert "Logboek" not in header
        listed = await phone.locator("main").inner_text()
        assert "Techniekmiddag Drenthe" in listed
        assert "Techniekmiddag Twente" not in listed
        assert await serious_accessibility_violations(phone) == []
        # The browser that asked is not signed in.
        await page.goto(f"{base}/events/organiser/")
        assert "/events/organiser/inloggen" in page.url

        # The link worked once.
        again = await opening.new_page()
        await again.goto(link)
        used = await again.request.post(
            link, form={"csrf_token": csrf_of(await again.content())}, max_redirects=0
        )
        assert used.status == 410
        await again.close()

        # Their own event opens; another region's is refused, page and API alike.
        mine = await phone.goto(f"{base}/events/organiser/evenementen/{ours}")
        assert mine is not None
        assert mine.status == 200
        other = await phone.goto(f"{base}/events/organiser/evenementen/{theirs}")
        assert other is not None
        assert other.status == 403
        assert "Geen toegang" in await phone.content()
        for path in (f"/events/api/organiser/events/{theirs}", "/events/api/organiser/me"):
            answer = await opening.request.get(base + path)
            assert answer.status == (403 if theirs in path else 200), path
        changed = await opening.request.patch(
            f"{base}/events/api/events/{theirs}", data={"title": "Overgenomen"}
        )
        assert changed.status == 403
        for path in ("/events/organiser/accounts", "/events/organiser/logboek"):
            refused = await opening.request.get(base + path, max_redirects=0)
            assert refused.status == 403, path
        # A new event in another region is refused; in their own it is made.
        token = await platform.account_token("leider-drenthe-script", "regional",
                                             regions=("drenthe",))  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}"}
        draft = {
            "kind": "regional_meeting",
            "title": "Nieuw in Twente",
            "starts_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(days=30, hours=2)).isoformat(),
            "region_codes": ["twente"],
            "venue": "Techniekhuis",
            "capacity": 30,
        }
        foreign = await platform.gateway.post("/events/api/events", json=draft, headers=bearer)
        assert foreign.status_code == 403
        draft |= {"title": "Nieuw in Drenthe", "region_codes": ["drenthe"]}
        own = await platform.gateway.post("/events/api/events", json=draft, headers=bearer)
        assert own.status_code == 201, own.text
        listed_by_api = await platform.gateway.get("/events/api/organiser/events", headers=bearer)
        titles = {e["title"] for e in listed_by_api.json()}
        assert "Techniekmiddag Drenthe" in titles
        assert "Techniekmiddag Twente" not in titles

        # Every refusal left a row; so did the sign-in.
        rows = await audit_rows(platform, LEADER)
        assert ("sign_in", "done") in [(r["action"], r["outcome"]) for r in rows]
        denied = [r for r in rows if r["outcome"] == "denied"]
        assert str(theirs) in {str(r["event_id"]) for r in denied}
        assert len(denied) >= 5

        # The programme team removes the account: the session ends at once, the token too.
        async with platform.organiser_browser() as team:
            accounts = await team.get("/events/organiser/accounts")
            account_id = re.search(
                r'/events/organiser/accounts/(\d+)/verwijderen"[^<]*>\s*<input[^>]*>\s*'
                r'<button[^>]*>Verwijderen<span class="visually-hidden"> Leider Drenthe<',
                accounts.text,
            )
            assert account_id is not None
            removed = await team.post(
                f"/events/organiser/accounts/{account_id.group(1)}/verwijderen",
                data={"csrf_token": csrf_of(accounts.text)},
            )
            assert removed.status_code == 200
            log = await team.get("/events/organiser/logboek")
            assert log.status_code == 200
            for shown in ("account toegevoegd", "account verwijderd", "geweigerd", LEADER):
                assert shown in log.text, shown
        await phone.goto(f"{base}/events/organiser/evenementen/{ours}")
        assert "/events/organiser/inloggen" in phone.url
        script = await platform.gateway.get("/events/api/organiser/me", headers=bearer)
        assert script.status_code == 200  # another account's token: untouched
    finally:
        await asking.close()
        await opening.close()
    figures(f"console accounts: {len(denied)} refusals of a regional leader, each audited")


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(platform: Platform) -> None:
    async with platform.organiser_browser() as anyone:
        anyone.cookies.clear()
        form = await anyone.get("/events/organiser/inloggen")
        known = await anyone.post(
            "/events/organiser/inloggen",
            data={"csrf_token": csrf_of(form.text), "email": DEMO_ORGANISER},
        )
        unknown = await anyone.post(
            "/events/organiser/inloggen",
            data={"csrf_token": csrf_of(form.text), "email": "onbekend@sto.example"},
        )
        assert known.status_code == unknown.status_code == 200
        notice = "staat er nu een inloglink in die mailbox"
        assert notice in known.text
        assert notice in unknown.text
        await eventually(
            lambda: sign_in_link(platform, DEMO_ORGANISER),
            what="the known address's link",
        )
        assert platform.smtp.to("onbekend@sto.example") == []
