"""The sign-up POST without FastAPI's per-request machinery: the platform's busiest write.

A plain ASGI middleware, innermost of the app's own (inside the request telemetry, so the
request still gets its span and latency observation). It takes ``POST
/api/events/{uuid}/registrations`` with a JSON body that ``SignUp.model_validate_json``
accepts, and answers it with the same code as the route (``registrations.signed_up``).
Everything else, a body that does not validate included, is replayed to the app unchanged, so
its 422 (or any other answer) and the OpenAPI schema stay FastAPI's own. pydantic's JSON
parser is the stricter one: a byte-order mark or bytes that are not UTF-8, which FastAPI's
``json.loads`` may take, go to FastAPI too; what both accept validates to the same values.
Errors the sign-up raises go to the app's exception handlers, as they would from the route.

Measured (``python -m bench signups``): FastAPI's routing, dependency solving and body
machinery cost about as much CPU per request as the sign-up itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi.routing import APIRoute
from starlette._utils import get_route_path, is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sto_registrations.api.abuse import SignUpGuard
from sto_registrations.api.registrations import signed_up
from sto_registrations.api.schemas import SignUp
from sto_registrations.service import RegistrationsService
from stolive_shared.events_client import SchoolDirectory
from stolive_shared.web import replaying

_SIGN_UP = re.compile(
    r"/api/events/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/registrations"
)
_JSON = b"application/json"
_validate = SignUp.model_validate_json


class SignUpFastPath:
    """Answer well-formed JSON sign-ups directly; hand every other request to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: RegistrationsService,
        guard: SignUpGuard,
        schools: SchoolDirectory,
        route: APIRoute,
        exception_handlers: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self.service = service
        self.guard = guard
        self.schools = schools
        self.route = route
        # The app's own handlers (the dict itself: handlers added later count too). Those for
        # 500 and ``Exception`` belong to the server-error middleware outside, as in FastAPI.
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _SIGN_UP.fullmatch(get_route_path(scope))
        if match is None or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        sign_up = _parsed(body) if body is not None else None
        if sign_up is None:
            await self.app(scope, replaying(messages, receive), send)
            return
        # As routing would set them (the latency histogram is labelled by the route).
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = {"event_id": match.group(1)}
        event_id = uuid.UUID(match.group(1))
        try:
            answer = await signed_up(
                self.service, self.guard, self.schools, scope, event_id, sign_up
            )
        except Exception as exc:
            await self._handle(exc, scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [
                    (b"content-length", str(len(answer)).encode("latin-1")),
                    (b"content-type", _JSON),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _handle(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """As Starlette's exception middleware would: the app's handler, else raise."""
        handler = None
        handlers = self.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code != 500:
            handler = handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                if cls is not Exception and cls in handlers:
                    handler = handlers[cls]
                    break
        if handler is None:
            raise exc
        request = Request(scope, receive)
        if is_async_callable(handler):
            response = await handler(request, exc)
        else:
            response = await run_in_threadpool(handler, request, exc)
        if response is not None:
            await response(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.partition(b";")[0].strip().lower() == _JSON
    return False


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its body (None if the client went away)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parsed(body: bytes) -> SignUp | None:
    if not body:
        return None
    try:
        return _validate(body)
    except ValueError:  # ValidationError included: the app answers it (422)
        return None
