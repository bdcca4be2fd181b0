"""``POST /api/beacons``: the players' join, heartbeat and leave reports, straight to Kafka.

The hot path of the service: no PostgreSQL work, no organiser check, one JSON parse. Accepts
one beacon or a list, as ``application/json`` or as the ``text/plain`` body that
``navigator.sendBeacon`` sends with a string. Answers 204 once the beacons are in the
producer's buffer (see ``sto_events.adapters.beacons``).

``BeaconEndpoint`` is plain ASGI, and ``EventsApp`` (``app.py``) hands it beacon requests
before the middleware stack: the per-request span and Starlette's ``BaseHTTPMiddleware`` cost
more than the beacon itself at thousands per second. Beacons are still timed in the shared
request-latency histogram; they get no trace span. The FastAPI route below documents the
endpoint in OpenAPI and answers the same way if it is ever reached.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from sto_events.adapters.beacons import BeaconPublisher, BrokerUnavailable, EventStatusCache
from sto_events.api.schemas import BEACONS, BeaconIn
from sto_events.domain import (
    BeaconRefused,
    ViewerThrottle,
    beacon_clock_skew_ok,
    check_beacon,
    check_viewer,
)
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.links import PersonalLinks
from stolive_shared.metrics import REQUEST_SECONDS
from stolive_shared.organisers.web import PUBLIC

BEACONS_PATH = "/api/beacons"
# A beacon is ~200 bytes of JSON; this leaves room for long ids and whitespace.
BYTES_PER_BEACON = 512
_ACCEPTED_TYPES = ("application/json", "text/plain", "")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    status: int
    detail: object = None
    retry_after: str | None = None

    def body(self) -> bytes:
        return b"" if self.detail is None else json.dumps({"detail": self.detail}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"cache-control", b"no-store")]
        if self.detail is not None:
            headers.append((b"content-type", b"application/json"))
        if self.retry_after:
            headers.append((b"retry-after", self.retry_after.encode()))
        return headers


ACCEPTED = Answer(204)


class BeaconEndpoint:
    """Checks beacons against the status cache and the throttle, then hands them to Kafka."""

    def __init__(
        self,
        statuses: EventStatusCache,
        throttle: ViewerThrottle,
        publisher: BeaconPublisher,
        max_batch: int,
        links: PersonalLinks,
    ) -> None:
        self.links = links
        self.statuses = statuses
        self.throttle = throttle
        self.publisher = publisher
        self.max_batch = max_batch
        self.max_bytes = max_batch * BYTES_PER_BEACON

    async def answer(self, body: bytes, content_type: str) -> Answer:
        if content_type.split(";", 1)[0].strip().lower() not in _ACCEPTED_TYPES:
            return Answer(415, "Stuur kijkmeldingen als JSON (application/json of text/plain)")
        if len(body) > self.max_bytes:
            return Answer(413, f"Te veel kijkmeldingen in één verzoek (hooguit {self.max_batch})")
        try:
            parsed = BEACONS.validate_json(body)
        except ValidationError as exc:
            return Answer(
                422, exc.errors(include_url=False, include_context=False, include_input=False)
            )
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items:
            return Answer(422, "Geen kijkmeldingen ontvangen")
        if len(items) > self.max_batch:
            return Answer(413, f"Te veel kijkmeldingen in één verzoek (hooguit {self.max_batch})")

        received_at = datetime.now(UTC)
        beacons = [item.to_domain() for item in items]
        try:
            for beacon in beacons:
                check_beacon(beacon, self.statuses.status(beacon.event_id))
                proven = (
                    self.links.viewer(beacon.event_id, beacon.viewer_token)
                    if beacon.viewer_token
                    else None
                )
                check_viewer(beacon, proven)
        except BeaconRefused as refused:
            return Answer(refused.status, str(refused))
        if not all(beacon_clock_skew_ok(beacon, received_at) for beacon in beacons):
            return Answer(422, "De klok van het apparaat staat meer dan een dag verkeerd")
        if not self.publisher.available:
            return Answer(503, "Kijkmeldingen kunnen nu niet worden verwerkt", "2")

        now = time.monotonic()
        allowed = [beacon for beacon in beacons if self.throttle.allow(beacon, now)]
        if not allowed:
            interval = f"{self.throttle.min_interval_s:g}"
            return Answer(429, f"Hooguit één kijkmelding per {interval} seconden", interval)
        try:
            # Every field was validated on the way in: constructing skips validating again.
            await self.publisher.publish(
                [
                    ViewerBeacon.model_construct(
                        message_id=uuid.uuid4(),
                        occurred_at=received_at,
                        event_id=beacon.event_id,
                        viewer_id=beacon.viewer_id,
                        action=beacon.action,
                        mode=beacon.mode,
                        client_ts=beacon.client_ts,
                        received_at=received_at,
                        position_s=beacon.position_s,
                    )
                    for beacon in allowed
                ]
            )
        except BrokerUnavailable as exc:
            return Answer(503, str(exc), "2")
        return ACCEPTED

    @staticmethod
    def wants(scope: Scope) -> bool:
        """A POST to the beacon path (under the service's root path, when it has one)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        return path == BEACONS_PATH or path == root + BEACONS_PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        chunks: list[bytes] = []
        size = 0
        answer: Answer | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                answer = Answer(
                    413, f"Te veel kijkmeldingen in één verzoek (hooguit {self.max_batch})"
                )
                break
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if answer is None:
            answer = await self.answer(b"".join(chunks), content_type)
        body = answer.body()
        headers = answer.headers()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        REQUEST_SECONDS.labels("events", "POST", BEACONS_PATH, str(answer.status)).observe(
            time.perf_counter() - started
        )


router = APIRouter(prefix="/api", tags=["viewers"], dependencies=[PUBLIC])

_ONE_BEACON = BeaconIn.model_json_schema()
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "oneOf": [
                        _ONE_BEACON,
                        {"type": "array", "items": _ONE_BEACON, "minItems": 1, "maxItems": 100},
                    ]
                }
            }
            for media in ("application/json", "text/plain")
        },
    }
}


@router.post(
    "/beacons",
    status_code=204,
    summary="Report watching: join, heartbeat or leave (one beacon or a batch)",
    openapi_extra=_BODY_DOC,
    responses={
        404: {"description": "Unknown event"},
        403: {"description": "A registration's viewer id without its watch-link token"},
        409: {"description": "A live beacon for an event that is not live"},
        413: {"description": "Too many beacons in one request"},
        415: {"description": "Neither JSON nor text/plain"},
        422: {"description": "Not a beacon (or a position outside a replay, or over 24 h)"},
        429: {"description": "This viewer reports more often than once per 5 s"},
        503: {"description": "Kafka is away: retry after Retry-After seconds"},
    },
)
async def receive_beacons(request: Request) -> Response:
    endpoint: BeaconEndpoint = request.app.state.parts.beacons
    answer = await endpoint.answer(await request.body(), request.headers.get("content-type", ""))
    return Response(
        answer.body(),
        status_code=answer.status,
        headers={k.decode(): v.decode() for k, v in answer.headers()},
    )
