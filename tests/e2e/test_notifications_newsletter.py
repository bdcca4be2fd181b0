"""A newsletter over the whole platform (real processes, gateway, Chromium): a reader subscribes
and confirms in the browser, an organiser drafts a mailing that embeds the upcoming events
from the events service and sends it from the organiser pages, and the reader unsubscribes."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import ReceivedEmail, eventually, serious_accessibility_violations

READER = "fenna.de.jong@vmbo-college.nl"


def text_of(email: ReceivedEmail) -> str:
    body = email.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_subscribe_send_a_newsletter_with_the_agenda_and_unsubscribe(
    platform: Platform, browser: Any
) -> None:
    title = "STO LIVE-webinar over wat we leren van onderzoek"
    event_id = await published_event(platform, title=title)
    base = platform.stack.config.public_base_url
    page = await browser.new_page()
    try:
        await page.goto(f"{base}/notifications/nieuwsbrief")
        assert await serious_accessibility_violations(page) == []
        await page.get_by_label("Naam").fill("Fenna de Jong")
        await page.get_by_label("E-mailadres (verplicht)").fill(READER)
        await page.get_by_label("Je rol").select_option("docent")
        await page.get_by_label("Produceren, installeren en energie").check()
        await page.wait_for_timeout(2200)  # the bot guard wants a person's pace
        await page.get_by_role("button", name="Aanmelden").click()
        await page.get_by_role("heading", name="Bijna klaar").wait_for()

        [opt_in] = await eventually(lambda: platform.smtp.to(READER), what="the opt-in email")
        confirm = re.search(r"https?://\S+/nieuwsbrief/bevestigen/\S+", text_of(opt_in))
        assert confirm
        await page.goto(confirm.group(0))
        await page.get_by_role("button", name="Ja, ik wil de nieuwsbrief ontvangen").click()
        await page.get_by_role("heading", name="Aanmelding bevestigd").wait_for()

        created = await platform.gateway.post(
            "/notifications/api/mailings",
            headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
            json={
                "subject": "De instroomcijfers van schooljaar 2023-2024 zijn bekend",
                "body": "DUO heeft de voorlopige leerlingenaantallen gepubliceerd.",
                "audience": {"kind": "subscribers", "interests": ["PIE"]},
                "include_events": True,
            },
        )
        assert created.status_code == 201, created.text
        mailing_id = created.json()["id"]

        organiser = await browser.new_page()
        try:
            await platform.log_in(organiser)
            for path in ("", "/nieuw", f"/{mailing_id}/bewerken", f"/{mailing_id}"):
                await organiser.goto(f"{base}/notifications/organisator/mailings{path}")
                assert await serious_accessibility_violations(organiser) == [], path
            preview = await platform.gateway.get(
                f"/notifications/api/mailings/{mailing_id}/preview",
                headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
            )
            assert title in preview.text, "the agenda comes from the events service"
            await organiser.get_by_role("button", name="Inplannen").click()
            status = organiser.locator('[data-field="status"]')
            assert await status.inner_text() in ("Ingepland", "Wordt verstuurd", "Verstuurd")

            async def shown_sent() -> bool:  # the page follows progress without a reload
                return bool(await status.inner_text() == "Verstuurd")

            await eventually(shown_sent, what="the page to show the mailing as sent")
            sent = await organiser.locator('[data-field="sent"]').inner_text()
            assert int(sent) >= 1
        finally:
            await organiser.close()

        newsletter = await eventually(
            lambda: [m for m in platform.smtp.to(READER) if m.subject.startswith("De instroom")],
            what="the newsletter",
        )
        [received] = newsletter
        text = text_of(received)
        assert "Beste Fenna de Jong," in text
        assert title in text
        assert f"/registrations/events/{event_id}/aanmelden" in text
        unsubscribe = str(received.message["List-Unsubscribe"]).strip("<>")
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        await page.goto(unsubscribe)
        assert await serious_accessibility_violations(page) == []
        await page.get_by_role("button", name="Afmelden").click()
        await page.get_by_role("heading", name="Je bent afgemeld").wait_for()
        async with httpx.AsyncClient(timeout=10) as mail_client:  # one-click, again: harmless
            again = await mail_client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
    finally:
        await page.close()
