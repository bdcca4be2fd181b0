"""School sites through the events API: imported from CSV by the programme team only (all or
nothing, a region the programme does not know refuses the file), found by anyone by part of a
name or place, within a region."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from sto_events.service import EventsService
from stolive_shared.db import create_pool
from stolive_shared.organisers.store import OrganiserStore
from stolive_shared.settings import KafkaSettings
from tests.integration.test_events_api import running_events_app
from tests.support import organiser_token

SCHOOLS = (
    "brin;vestiging;naam;plaats;regio\n"
    "12AB;00;Techniekcollege Noord;Emmen;drenthe\n"
    "12AB;01;Techniekcollege Noord, locatie Assen;Assen;drenthe\n"
    "34CD;00;Vakcollege Zuid;Rotterdam;rotterdam-zuid\n"
)


@pytest.fixture(scope="module")
async def app_with_regions(
    database_url: str, kafka: KafkaSettings
) -> AsyncIterator[tuple[httpx.AsyncClient, EventsService, str]]:
    async with running_events_app(database_url, kafka) as running:
        client, _service, token = running
        regions = [
            {"code": "drenthe", "name": "Drenthe", "province": "Drenthe"},
            {"code": "rotterdam-zuid", "name": "Rotterdam Zuid", "province": "Zuid-Holland"},
        ]
        answer = await client.put(
            "/api/regions", json=regions, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
        yield running


async def support_token(database_url: str) -> str:
    """A token of an account with the support role (reads, changes nothing)."""
    pool = await create_pool(database_url, "events", max_size=1)
    try:
        store = OrganiserStore(pool, "k" * 32, idle=timedelta(hours=1), lifetime=timedelta(hours=1))
        return await organiser_token(store, "ondersteuning", "support")
    finally:
        await pool.close()


async def test_the_programme_team_imports_sites_and_anyone_finds_them(
    app_with_regions: tuple[httpx.AsyncClient, EventsService, str], database_url: str
) -> None:
    api, service, token = app_with_regions
    csv_headers = {"Content-Type": "text/csv"}
    refused = await api.post("/api/schools/import", content=SCHOOLS.encode(), headers=csv_headers)
    assert refused.status_code == 401
    support = await support_token(database_url)
    answer = await api.post(
        "/api/schools/import",
        content=SCHOOLS.encode(),
        headers=csv_headers | {"Authorization": f"Bearer {support}"},
    )
    assert answer.status_code == 403
    team = csv_headers | {"Authorization": f"Bearer {token}"}
    answer = await api.post("/api/schools/import", content=SCHOOLS.encode(), headers=team)
    assert answer.json() == {"imported": 3}

    found = (await api.get("/api/schools", params={"q": "techniekcollege"})).json()
    assert [s["label"] for s in found] == [
        "Techniekcollege Noord (Emmen)",
        "Techniekcollege Noord, locatie Assen (Assen)",
    ]
    in_region = (await api.get("/api/schools", params={"region": "rotterdam-zuid"})).json()
    assert [s["code"] for s in in_region] == ["34CD00"]
    by_place = (await api.get("/api/schools", params={"q": "assen"})).json()
    assert [s["code"] for s in by_place] == ["12AB01"]

    # A region the programme does not know refuses the whole file; nothing changes.
    unknown = SCHOOLS.replace("Vakcollege Zuid", "Vakcollege Anders").replace(
        "rotterdam-zuid", "atlantis"
    )
    answer = await api.post("/api/schools/import", content=unknown.encode(), headers=team)
    assert answer.status_code == 422
    assert "onbekende regio: atlantis" in answer.text
    kept = (await api.get("/api/schools", params={"q": "vakcollege"})).json()
    assert [s["name"] for s in kept] == ["Vakcollege Zuid"]
    assert len(await service.schools()) == 3
