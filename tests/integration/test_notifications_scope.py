"""Mailings and e-mail history by organiser role, inside one process against real PostgreSQL
and a real SMTP server: a regional programme leader mails only inside their regions (API and
pages alike, every refusal audited), the mailing form offers the events and regions of their
scope, and the internal sign-in route mails a one-time link that works."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from sto_notifications import repository
from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.service import EmailSender
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.internal import HEADER, service_token
from stolive_shared.organisers.audit import EventScope
from stolive_shared.runtime import Runtime
from tests.support import SmtpSink, organiser_session

SCHEMA = "notifications"
SECRET = "scope-test-link-secret"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=6)
    yield pool
    await pool.close()


@dataclass
class World:
    pool: asyncpg.Pool
    app: Any
    settings: NotificationsSettings
    sink: SmtpSink
    ours: uuid.UUID  # an event in Drenthe
    theirs: uuid.UUID  # an event in Twente
    our_registration: uuid.UUID
    their_registration: uuid.UUID

    def client(self, cookies: dict[str, str] | None = None, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="https://stolive.test",
            cookies=cookies,
            **kw,
        )

    async def as_role(self, name: str, role: str, **scope: Any) -> httpx.AsyncClient:
        return self.client(await organiser_session(self.app, name, role, **scope))

    async def audit(self, actor: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT action, outcome, event_id, subject, detail FROM organisers.audit"
            " WHERE actor = $1 ORDER BY id",
            actor,
        )
        return [dict(r) for r in rows]  # the pool's codec reads jsonb as a dict


async def _event(pool: asyncpg.Pool, title: str, region: str, days: int) -> uuid.UUID:
    event_id = uuid.uuid4()
    starts = datetime.now(UTC) + timedelta(days=days)
    async with pool.acquire() as conn:
        await EventScope.write(conn, event_id, [region])
        await repository.upsert_event(
            conn,
            repository.EventRow(
                event_id, 1, "published", title, starts, starts + timedelta(hours=2),
                None, None, (24.0,),
            ),
        )  # fmt: skip
    return event_id


async def _registration(pool: asyncpg.Pool, event_id: uuid.UUID) -> uuid.UUID:
    registration_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await repository.upsert_registration(
            conn,
            registration_id=registration_id,
            event_id=event_id,
            status="confirmed",
            name="Sanne Bakker",
            email=f"sanne-{registration_id.hex[:6]}@school.nl",
            role="docent",
            region_code=None,
            viewer_id="v",
            manage_url="https://stolive.test/registrations/r/x",
            person_key=f"pk-{registration_id}",
        )
    return registration_id


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool, database_url: str, smtp: tuple[SmtpSink, int]) -> World:
    settings = NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        smtp_port=smtp[1],
        public_base_url="https://stolive.test",
        link_secret=SecretStr(SECRET),
        events_api_url="http://127.0.0.1:9",  # away: the form names regions by code
    )
    app = DEFINITION.create_app(DEFINITION.bootstrap(Runtime(settings=settings, pool=pool)))
    ours = await _event(pool, "Techniekmiddag Drenthe", "drenthe", 10)
    theirs = await _event(pool, "Techniekmiddag Twente", "twente", 12)
    async with pool.acquire() as conn:
        subscriber = await repository.add_subscriber(
            conn,
            email="lezer-drenthe@school.nl",
            email_sha256="x",
            person_key="pk-lezer-drenthe",
            name="Lezer",
            role="docent",
            region_code="drenthe",
            interests=[],
            source="subscribe_form",
        )
        await repository.confirm_subscriber(conn, subscriber.id)
    return World(
        pool, app, settings, smtp[0], ours, theirs,
        await _registration(pool, ours), await _registration(pool, theirs),
    )  # fmt: skip


def mailing(audience: dict[str, Any]) -> dict[str, Any]:
    return {"subject": "Kom naar de techniekmiddag", "body": "Tot dan.", "audience": audience}


async def test_a_regional_leader_mails_only_inside_their_regions(world: World) -> None:
    async with (
        await world.as_role("leider-drenthe", "regional", regions=("drenthe",)) as leader,
        await world.as_role("programmabureau", "programme") as bureau,
    ):
        own_event = await leader.post(
            "/api/mailings",
            json=mailing({"kind": "registrants", "event_id": str(world.ours)}),
        )
        assert own_event.status_code == 201, own_event.text
        assert own_event.json()["created_by"] == "leider-drenthe@sto.example"
        own_region = await leader.post(
            "/api/mailings", json=mailing({"kind": "subscribers", "regions": ["drenthe"]})
        )
        assert own_region.status_code == 201, own_region.text
        for audience in (
            {"kind": "attendees", "event_id": str(world.theirs)},
            {"kind": "subscribers"},
            {"kind": "subscribers", "regions": ["drenthe", "twente"]},
        ):
            refused = await leader.post("/api/mailings", json=mailing(audience))
            assert refused.status_code == 403, audience

        national = (await bureau.post("/api/mailings", json=mailing({}))).json()["id"]
        twente = (
            await bureau.post(
                "/api/mailings",
                json=mailing({"kind": "no_shows", "event_id": str(world.theirs)}),
            )
        ).json()["id"]
        for method, path, body in (
            ("GET", f"/api/mailings/{national}", None),
            ("PUT", f"/api/mailings/{national}", mailing({"regions": ["drenthe"]})),
            ("POST", f"/api/mailings/{twente}/schedule", {}),
            ("POST", f"/api/mailings/{twente}/test", {"address": "leider@sto.example"}),
            ("GET", f"/api/mailings/{twente}/preview", None),
        ):
            answer = await leader.request(method, path, json=body)
            assert answer.status_code == 403, (method, path)
        # Nor can a draft of theirs be turned towards another region.
        moved = await leader.put(
            f"/api/mailings/{own_event.json()['id']}",
            json=mailing({"kind": "registrants", "event_id": str(world.theirs)}),
        )
        assert moved.status_code == 403

        listed = {m["id"] for m in (await leader.get("/api/mailings")).json()}
        assert listed == {own_event.json()["id"], own_region.json()["id"]}
        everything = {m["id"] for m in (await bureau.get("/api/mailings")).json()}
        assert {national, twente} | listed <= everything

        scheduled = await leader.post(f"/api/mailings/{own_region.json()['id']}/schedule", json={})
        assert scheduled.status_code == 200, scheduled.text

    rows = await world.audit("leider-drenthe@sto.example")
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert len(denied) == 9, denied
    assert {r["event_id"] for r in denied} >= {world.theirs}
    [done] = [r for r in rows if r["action"] == "mailing_scheduled"]
    assert done["outcome"] == "done"
    assert done["subject"] == f"mailing:{own_region.json()['id']}"
    assert done["detail"] == {
        "audience": {"kind": "subscribers", "regions": ["drenthe"]},
        "recipients": 1,
    }
    assert "@" not in json.dumps([r["detail"] for r in rows])
    assert sum(r["action"] == "mailing_saved" for r in rows) == 2


async def test_the_mailing_form_offers_the_events_and_regions_in_scope(world: World) -> None:
    async with await world.as_role("leider-drenthe", "regional", regions=("drenthe",)) as leader:
        form = await leader.get(
            f"/organisator/mailings/nieuw?evenement={world.ours}&groep=no_shows"
        )
        assert form.status_code == 200
        page = form.text
        assert "Techniekmiddag Drenthe" in page
        assert "Techniekmiddag Twente" not in page
        assert re.search(rf'<option value="{world.ours}" selected>', page)
        assert re.search(r'id="kind-no_shows" name="audience_kind" value="no_shows" checked', page)
        assert re.search(r'name="regions" value="drenthe" checked', page)
        assert 'value="twente"' not in page
        assert 'class="console"' in page
        assert "regionaal programmaleider" in page

        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        fields = {"csrf_token": csrf.group(1), "subject": "Hoe was het?", "body": "Vertel het."}
        saved = await leader.post(
            "/organisator/mailings",
            data={**fields, "audience_kind": "no_shows", "event_id": str(world.ours)},
        )
        assert saved.status_code == 303, saved.text
        shown = await leader.get(saved.headers["location"].removeprefix("https://stolive.test"))
        assert shown.status_code == 200
        refused = await leader.post(
            "/organisator/mailings",
            data={**fields, "audience_kind": "registrants", "event_id": str(world.theirs)},
        )
        assert refused.status_code == 403
        assert "Geen toegang" in refused.text
        national = await leader.post(
            "/organisator/mailings", data={**fields, "audience_kind": "subscribers"}
        )
        assert national.status_code == 403

    for role, scope in (("support", {}), ("checkin", {"events": (world.ours,)})):
        async with await world.as_role(f"alleen-{role}", role, **scope) as other:
            assert (await other.get("/organisator/mailings")).status_code == 403
            assert (await other.get("/api/mailings")).status_code == 403


async def test_the_emails_of_a_registration_need_its_event_in_scope(world: World) -> None:
    def path(registration: uuid.UUID) -> str:
        return f"/api/registrations/{registration}/emails"

    async with (
        await world.as_role("leider-drenthe", "regional", regions=("drenthe",)) as leader,
        await world.as_role("programmabureau", "programme") as bureau,
        await world.as_role("alleen-support", "support") as support,
    ):
        assert (await leader.get(path(world.our_registration))).status_code == 200
        assert (await leader.get(path(world.their_registration))).status_code == 403
        assert (await leader.get(path(uuid.uuid4()))).status_code == 404
        assert (await support.get(path(world.our_registration))).status_code == 403
        assert (await bureau.get(path(world.their_registration))).status_code == 200


async def test_the_internal_sign_in_route_mails_a_one_time_link(world: World) -> None:
    store = world.app.state.organisers.store
    account = await store.add_account("inlog-test@sto.example", "Inge Inlog", "support")
    token = {HEADER: service_token(world.settings.link_key())}
    async with world.client() as platform:
        known = await platform.post(
            "/internal/organiser-sign-in", json={"email": "Inlog-Test@sto.example"}, headers=token
        )
        unknown = await platform.post(
            "/internal/organiser-sign-in", json={"email": "niemand@sto.example"}, headers=token
        )
        outsider = await platform.post(
            "/internal/organiser-sign-in", json={"email": "inlog-test@sto.example"}
        )
    assert (known.status_code, known.json()) == (202, {"queued": True})
    assert (unknown.status_code, unknown.json()) == (202, {"queued": False})
    assert outsider.status_code == 404

    await EmailSender(world.pool, world.settings).drain()
    [email] = world.sink.to("inlog-test@sto.example")
    assert email.subject == "Inloggen bij STO Live"
    assert world.sink.to("niemand@sto.example") == []
    body = email.message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "15 minuten" in text
    assert "Heb je dit niet aangevraagd? Dan kun je deze e-mail negeren." in text
    link = re.search(r"https://stolive\.test/events/organiser/inloggen/link/(\S+)", text)
    assert link, text
    assert await store.use_sign_in_link(link.group(1)) == account
    assert await store.use_sign_in_link(link.group(1)) is None  # once

    [sent] = await world.audit("inlog-test@sto.example")
    assert (sent["action"], sent["outcome"]) == ("sign_in_link_sent", "done")
    keys = await world.pool.fetch("SELECT dedup_key FROM emails WHERE kind = 'organiser_sign_in'")
    assert len(keys) == 1
    assert link.group(1) not in keys[0]["dedup_key"]
