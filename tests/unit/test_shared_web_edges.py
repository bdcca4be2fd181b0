"""The shared web plumbing at its edges: personal links that are not ours, an organiser check
while the events service is away, refused input answered in the documented 422 shape, and
request bodies too large to hold.

No ``from __future__ import annotations``: FastAPI must see the ``Organiser`` dependency type,
built inside a test, as an object rather than a name.
"""

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, Request

from stolive_shared.errors import DependencyUnavailable
from stolive_shared.links import sign, verify
from stolive_shared.organisers import OrganiserVerifier, organiser_dependency
from stolive_shared.web import BodyLimit, service_app, unprocessable

SECRET = "unit-test-secret"


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


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


class TestOrganiserCheckWhileTheEventsServiceIsAway:
    async def test_the_verifier_says_unavailable_not_an_http_error(self) -> None:
        verifier = OrganiserVerifier(f"http://127.0.0.1:{closed_port()}")
        with pytest.raises(DependencyUnavailable):
            await verifier.organiser_for("sto_some_token")

    async def test_a_request_with_a_bearer_token_gets_503_with_retry_after(self) -> None:
        verifier = OrganiserVerifier(f"http://127.0.0.1:{closed_port()}")
        app = service_app(title="test", description="test", service_name="test")
        Organiser = Annotated[str, Depends(organiser_dependency(SECRET, verifier))]

        @app.get("/private")
        async def private(organiser: Organiser) -> dict[str, str]:
            return {"organiser": organiser}

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.get("/private", headers={"Authorization": "Bearer sto_x"})
            without = await client.get("/private")
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "2"
        assert without.status_code == 401, "no credential is still 401, events away or not"


async def test_refused_input_is_a_422_in_fastapis_own_shape() -> None:
    app = service_app(title="test", description="test", service_name="test")

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
    def client(self, reached: list[bytes]) -> httpx.AsyncClient:
        app = service_app(title="test", description="test", service_name="test")

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
