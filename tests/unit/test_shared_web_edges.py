"""The shared web plumbing at its edges: personal links that are not ours, an organiser check
while PostgreSQL is away, refused input answered in the documented 422 shape, and request
bodies too large to hold.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from stolive_shared import links
from stolive_shared.links import sign, verify
from stolive_shared.organisers.web import OrganiserDep
from stolive_shared.settings import ServiceSettings
from stolive_shared.web import BodyLimit, service_app, unprocessable

SECRET = "unit-test-secret"


class UnreachableDatabase:
    """A pool whose server does not answer: every query is refused, as a dead server's is."""

    async def fetchrow(self, *_args: Any) -> None:
        raise ConnectionRefusedError("PostgreSQL does not answer")


def app_on(tmp_path: Path, pool: object = None) -> FastAPI:
    return service_app(
        title="test",
        description="test",
        service_name="test",
        settings=ServiceSettings(data_dir=tmp_path),
        pool=cast(asyncpg.Pool, pool),
    )


class TestPersonalLinks:
    def test_a_signed_link_names_its_registration(self) -> None:
        subject = uuid.uuid4()
        assert verify(SECRET, "manage", sign(SECRET, "manage", subject)) == subject

    def test_a_link_for_another_purpose_is_invalid(self) -> None:
        assert verify(SECRET, "unsubscribe", sign(SECRET, "manage", uuid.uuid4())) is None

    @pytest.mark.parametrize(
        "token",
        [
            "",
            ".",
            "not-a-token",
            "é" * 32 + ".abc",  # non-ASCII id
            "0" * 32 + ".mäc",  # non-ASCII MAC: compare_digest would raise TypeError
            "\u0660" * 32 + ".abc",  # Arabic-Indic digits, which uuid.UUID reads as hex
            "z" * 32 + ".abc",
            "0" * 32 + ".",
            "0" * 31 + ".abc",
            "0" * 32 + ".a\x00b",
            "\ud800" * 32 + ".abc",  # an unpaired surrogate, as a fuzzer sends it
        ],
    )
    def test_a_malformed_token_is_invalid_not_an_error(self, token: str) -> None:
        assert verify(SECRET, "manage", token) is None

    def test_a_valid_token_with_non_ascii_appended_is_invalid(self) -> None:
        token = sign(SECRET, "manage", uuid.uuid4())
        assert verify(SECRET, "manage", token + "é") is None

    def test_a_watch_link_carries_the_viewer_id_signed_for_one_event(self) -> None:
        event, other = uuid.uuid4(), uuid.uuid4()
        viewer = "v_" + "ab" * 12
        link = links.watch_url("https://stolive.nl/", "geheim", event, viewer)
        assert link.startswith(f"https://stolive.nl/events/watch/{event}?v={viewer}.")
        token = link.split("?v=")[1]
        assert links.watch_viewer("geheim", event, token) == viewer
        assert links.watch_viewer("geheim", other, token) is None  # another broadcast
        assert links.watch_viewer("ander-geheim", event, token) is None  # not signed by us
        assert links.watch_viewer("geheim", event, viewer) is None  # no signature at all
        someone_else = "v_" + "cd" * 12
        assert links.watch_viewer("geheim", event, someone_else + token[len(viewer) :]) is None


async def test_an_organiser_check_while_postgresql_is_away_is_503_with_retry_after(
    tmp_path: Path,
) -> None:
    app = app_on(tmp_path, UnreachableDatabase())

    @app.get("/private")
    async def private(organiser: OrganiserDep) -> dict[str, str]:
        return {"organiser": organiser.email}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/private", headers={"Authorization": "Bearer sto_x"})
        without = await client.get("/private")
        client.cookies.set("sto_session", "x" * 43)
        session = await client.get("/private")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert session.status_code == 503
    assert without.status_code == 401, "no credential is still 401, database away or not"


async def test_refused_input_is_a_422_in_fastapis_own_shape(tmp_path: Path) -> None:
    app = app_on(tmp_path)

    @app.post("/mailings")
    async def create() -> None:
        raise unprocessable({"subject": "Geef de mailing een onderwerp.", "": "Alles fout."})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/mailings")
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [
            {"loc": ["body", "subject"], "msg": "Geef de mailing een onderwerp.",
             "type": "value_error"},
            {"loc": ["body"], "msg": "Alles fout.", "type": "value_error"},
        ]
    }  # fmt: skip


class TestRequestBodies:
    LIMIT = 1_000

    @pytest.fixture
    def reached(self) -> list[bytes]:
        """The bodies the app behind the limit has read."""
        return []

    @pytest.fixture
    def client(self, reached: list[bytes], tmp_path: Path) -> httpx.AsyncClient:
        app = app_on(tmp_path)

        @app.post("/upload")
        async def upload(request: Request) -> dict[str, int]:
            reached.append(await request.body())
            return {"bytes": len(reached[-1])}

        @app.get("/upload")
        async def look() -> dict[str, str]:
            return {"status": "ok"}

        transport = httpx.ASGITransport(app=BodyLimit(app, self.LIMIT))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    @staticmethod
    async def in_chunks(body: bytes, size: int = 300) -> AsyncIterator[bytes]:
        """Without a Content-Length, as the dev gateway forwards a body."""
        for start in range(0, len(body), size):
            yield body[start : start + size]

    async def test_a_declared_body_over_the_limit_is_refused_before_the_app_runs(
        self, client: httpx.AsyncClient, reached: list[bytes]
    ) -> None:
        answer = await client.post("/upload", content=b"x" * (self.LIMIT + 1))
        assert answer.status_code == 413
        assert "te groot" in answer.json()["detail"]
        assert reached == []

    async def test_a_body_at_the_limit_reaches_the_app_whole(
        self, client: httpx.AsyncClient, reached: list[bytes]
    ) -> None:
        body = bytes(range(256)) * 3 + b"y" * (self.LIMIT - 768)
        answer = await client.post("/upload", content=body)
        assert answer.status_code == 200
        assert reached == [body]

    async def test_a_chunked_body_over_the_limit_is_refused_before_the_app_runs(
        self, client: httpx.AsyncClient, reached: list[bytes]
    ) -> None:
        answer = await client.post("/upload", content=self.in_chunks(b"x" * (self.LIMIT * 3)))
        assert answer.status_code == 413
        assert reached == []

    async def test_a_chunked_body_under_the_limit_reaches_the_app_in_order(
        self, client: httpx.AsyncClient, reached: list[bytes]
    ) -> None:
        body = b"".join(str(n).encode() + b"," for n in range(200))[: self.LIMIT]
        answer = await client.post("/upload", content=self.in_chunks(body))
        assert answer.status_code == 200
        assert reached == [body]

    async def test_a_request_without_a_body_passes(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/upload")).json() == {"status": "ok"}


def test_a_refusal_names_a_personal_token_in_its_path_but_never_shows_it() -> None:
    from types import SimpleNamespace

    from stolive_shared.organisers.web import _without_secrets

    request = SimpleNamespace(
        url=SimpleNamespace(path="/organisator/inchecken/c_abc.def"),
        path_params={"token": "c_abc.def"},
    )
    assert _without_secrets(request) == "/organisator/inchecken/{token}"  # type: ignore[arg-type]
    plain = SimpleNamespace(
        url=SimpleNamespace(path="/api/events/e1"), path_params={"event_id": "e1"}
    )
    assert _without_secrets(plain) == "/api/events/e1"  # type: ignore[arg-type]
