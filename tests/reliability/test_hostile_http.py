"""Hostile HTTP: every service's OpenAPI fuzzed by schemathesis, header injection, malformed
personal links, oversized bodies and rate limits. No input may produce a 500; answers match
their documented schemas. The fuzzer gets one real id per service (an event, a mailing) so
that it reaches the code behind the ids, not only their 404.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from stolive.stack import SERVICES
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import form_token

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


async def known_ids(platform: Platform, service: str) -> dict[str, str]:
    """Real ids for path parameters, so fuzzing reaches past the 404 of an unknown id."""
    if service != "notifications":
        return {"event_id": await published_event(platform, capacity=5)}
    created = await platform.gateway.post(
        "/notifications/api/mailings",
        json={"subject": "Fuzzing", "body": "Een mailing om op te schieten."},
        headers=platform.organiser.headers,
    )
    assert created.status_code == 201, created.text
    return {"mailing_id": created.json()["id"]}


@pytest.mark.parametrize("service", SERVICES)
async def test_fuzzing_the_openapi_finds_no_server_error(
    platform: Platform, service: str, figures: Callable[[str], None], tmp_path: Path
) -> None:
    base = platform.stack.service_url(service)
    config = tmp_path / "schemathesis.toml"
    ids = await known_ids(platform, service)
    config.write_text(
        "[parameters]\n" + "".join(f'"path.{name}" = "{value}"\n' for name, value in ids.items())
    )
    process = await asyncio.create_subprocess_exec(
        SCHEMATHESIS, "--config-file", str(config), "run", f"{base}/openapi.json", "--url", base,
        "--checks", "not_a_server_error,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--seed", "20261123",
        "--request-timeout", "10", "--max-failures", "10",
        # An endless Server-Sent Events stream only ever ends in the request timeout.
        "--exclude-path-regex", "/live/feed$",
        "--header", f"Authorization: Bearer {platform.stack.organiser_token}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    report = output.decode(errors="replace")
    summary = [line for line in report.splitlines() if "generated" in line]
    figures(f"schemathesis {service}: {summary[-1].strip() if summary else 'no summary'}")
    assert process.returncode == 0, report[-6000:]


async def test_line_breaks_in_names_are_refused_not_injected(platform: Platform) -> None:
    event_id = await published_event(platform, capacity=None)
    token = await form_token(platform.gateway, "/registrations", event_id)
    answer = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={"name": "Anna\r\nBcc: iedereen@example.org", "email": "anna@school.nl",
              "role": "docent", "privacy_consent": True, "form_token": token},
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "name"]
    assert not platform.smtp.to("iedereen@example.org")


async def test_a_malformed_personal_link_is_not_found_not_a_server_error(
    platform: Platform,
) -> None:
    manage_token = "0" * 32 + ".m%C3%A4c"  # a non-ASCII MAC once made compare_digest raise
    for method, path in [
        ("POST", f"/notifications/afmelden/{manage_token}"),
        ("GET", f"/notifications/afmelden/{manage_token}"),
        ("POST", f"/notifications/nieuwsbrief/bevestigen/{manage_token}"),
        ("GET", f"/registrations/r/{manage_token}"),
        ("GET", f"/analytics/certificaat/{manage_token}"),
        ("GET", "/notifications/afmelden/%C3%A9%C3%A9%C3%A9"),
    ]:
        answer = await platform.gateway.request(method, path)
        assert answer.status_code in (200, 403, 404), (method, path, answer.status_code)


async def test_oversized_bodies_are_refused_before_a_service_reads_them(platform: Platform) -> None:
    """3 MB through the gateway (which forwards it chunked) and straight to each service (with
    its Content-Length): 413 every time, the limit being 2 MB."""
    event_id = await published_event(platform, capacity=None)
    huge = "x" * 3_000_000
    sign_up = {"name": huge, "email": "a@school.nl", "role": "docent", "privacy_consent": True}
    for path, body in [
        (f"/registrations/api/events/{event_id}/registrations", sign_up),
        ("/events/api/events", {"kind": "webinar", "title": huge}),
        ("/notifications/api/mailings", {"subject": "Groot", "body": huge}),
    ]:
        answer = await platform.gateway.post(path, json=body, headers=platform.organiser.headers)
        assert answer.status_code == 413, (path, answer.status_code)
    async with httpx.AsyncClient() as direct:
        for service in SERVICES:
            answer = await direct.post(
                f"{platform.stack.service_url(service)}/api/anything", content=b"x" * 3_000_000
            )
            assert answer.status_code == 413, (service, answer.status_code)


async def test_a_burst_from_one_address_is_rate_limited(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, capacity=None)
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(
        base_url=platform.stack.config.public_base_url, timeout=10
    ) as client:
        token = await form_token(client, "/registrations", event_id)
        for number in range(200):
            answer = await client.post(
                f"/registrations/api/events/{event_id}/registrations",
                json={"name": f"Bot {number}", "email": f"bot{number}@spam.example",
                      "role": "anders", "privacy_consent": True, "form_token": token},
            )  # fmt: skip
            statuses[answer.status_code] += 1
    figures(f"rate limit: 200 sign-ups from one address in a burst -> {dict(statuses)}")
    assert statuses[429] > 0
    assert statuses[500] == 0
