"""What every service's HTTP face shares: health, readiness, 503 on outages, trace context,
422 in one shape for refused input, the 403 page for a form without its CSRF token, 413
for a body too large to be honest input, the organiser check and the security headers.

``/healthz`` says the process serves; ``/readyz`` says it can do its work (PostgreSQL answers).
A request that finds PostgreSQL away gets 503 with a Dutch message and ``Retry-After``, never
a 500: the client (or the player, or the gateway) may retry.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, overload

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.errors import DependencyUnavailable, DomainError
from stolive_shared.metrics import REQUEST_SECONDS, Refresh, metrics_router
from stolive_shared.organisers.audit import AuditLog
from stolive_shared.organisers.store import OrganiserStore
from stolive_shared.organisers.web import PUBLIC, Forbidden, LoginRequired, OrganiserAccess
from stolive_shared.pages import ExpiredForm
from stolive_shared.settings import ServiceSettings
from stolive_shared.telemetry import context_from_headers

log = logging.getLogger(__name__)

# The refusal page of every service (no style, so no CSP nonce is needed): plain, Dutch, with
# the way back to the console.
FORBIDDEN_PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Geen toegang · STO Live</title></head>
<body><main><h1>Geen toegang</h1><p>{message}</p>
<p><a href="/events/organiser/">Naar het overzicht</a></p></main></body></html>"""
_tracer = trace.get_tracer(__name__)

_NOT_READY: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    DependencyUnavailable,
    TimeoutError,
)

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
AppT = TypeVar("AppT", bound=FastAPI)


def unprocessable(problems: Mapping[str, str], location: str = "body") -> RequestValidationError:
    """Input our rules refuse, answered like FastAPI's own 422: a message per field, in the
    ``HTTPValidationError`` shape every route's OpenAPI declares. A field named "" stands for
    the whole ``location``.
    """
    return RequestValidationError(
        [
            {"loc": (location, field) if field else (location,), "msg": msg, "type": "value_error"}
            for field, msg in problems.items()
        ]
    )


async def unprocessable_response(request: Request, problems: Mapping[str, str]) -> Response:
    """The 422 answer of ``unprocessable``, for exception handlers."""
    return await request_validation_exception_handler(request, unprocessable(problems))


def health_router(
    pool_of: Callable[[], asyncpg.Pool | None],
    extra: ReadinessCheck | None = None,
    refresh_metrics: Refresh | None = None,
    *,
    metrics_here: bool = True,
) -> APIRouter:
    """``/healthz``, ``/readyz``, and ``/metrics`` unless they are served on a port of their own
    (``METRICS_PORT``, see ``runtime``)."""
    router = APIRouter(tags=["health"], dependencies=[PUBLIC])
    if metrics_here:
        router.include_router(metrics_router(refresh_metrics))

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The service can do its work")
    async def readyz(response: Response) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ready"}
        pool = pool_of()
        try:
            if pool is None:
                raise DependencyUnavailable("no database pool yet")
            async with pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            body["database"] = "ok"
        except _NOT_READY as exc:
            body.update(status="not ready", database=f"unavailable: {exc}")
            response.status_code = 503
        if extra is not None:
            body.update(await extra())
        return body

    return router


def install_common_handlers(app: FastAPI, service_name: str) -> None:
    """503 for outages, and a server span per request continuing the caller's trace."""

    async def unavailable(_request: Request, exc: Exception) -> Response:
        log.warning("dependency unavailable: %r", exc)
        return JSONResponse(
            {"detail": "De dienst is tijdelijk niet beschikbaar. Probeer het zo opnieuw."},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    for error in (*CONNECTION_ERRORS, DependencyUnavailable):
        app.add_exception_handler(error, unavailable)

    async def unstorable(request: Request, exc: Exception) -> Response:
        # Text PostgreSQL cannot store (a NUL byte, an unpaired surrogate) or a value out of
        # its range is bad input, whichever field held it: 422, not 500.
        log.info("input refused by the database: %r", exc)
        return await unprocessable_response(
            request, {"": "Ongeldige tekens of waarde in de invoer."}
        )

    for error in (asyncpg.DataError, UnicodeEncodeError):
        app.add_exception_handler(error, unstorable)

    async def expired(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ExpiredForm)
        return exc.response

    app.add_exception_handler(ExpiredForm, expired)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        if exc.status == 422:
            return await unprocessable_response(
                request, exc.problems or {exc.field or "": str(exc)}
            )
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    app.add_exception_handler(DomainError, refused)

    async def to_login(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_url, status_code=303)

    app.add_exception_handler(LoginRequired, to_login)

    async def forbidden(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        return HTMLResponse(FORBIDDEN_PAGE.format(message=html.escape(exc.message)), 403)

    app.add_exception_handler(Forbidden, forbidden)

    app.add_middleware(RequestTelemetry, service_name=service_name)


@overload
def service_app(
    *,
    title: str,
    description: str,
    service_name: str,
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    app_class: type[AppT],
    **options: Any,
) -> AppT: ...


@overload
def service_app(
    *,
    title: str,
    description: str,
    service_name: str,
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    **options: Any,
) -> FastAPI: ...


def service_app(
    *,
    title: str,
    description: str,
    service_name: str,
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    app_class: type[FastAPI] = FastAPI,
    **options: Any,
) -> FastAPI:
    """A service's FastAPI app (of ``app_class``, a ``FastAPI`` subclass if it needs one) with
    the shared error answers, request telemetry, security headers and organiser check
    (``app.state.organisers``, over ``pool``). ``/docs`` and ``/openapi.json`` only where
    ``settings.docs_enabled``.

    FastAPI's own per-request telemetry is off: ``RequestTelemetry`` already makes one span
    and one latency observation per request, and doing it twice costs more than most routes.
    """
    docs = settings.docs_enabled
    app = app_class(
        title=title,
        version="1.0",
        description=description,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        **options,
    )
    install_common_handlers(app, service_name)
    app.add_middleware(
        SecurityHeaders, https=settings.https, frame_ancestors=settings.frame_ancestors
    )
    app.state.organisers = OrganiserAccess(
        OrganiserStore(
            pool,
            settings.session_key(),
            idle=timedelta(minutes=settings.organiser_session_idle_minutes),
            lifetime=timedelta(hours=settings.organiser_session_max_hours),
            sign_in_valid=timedelta(minutes=settings.sign_in_link_minutes),
        ),
        AuditLog(pool, service_name),
        https=settings.https,
    )
    return app


def allow_framing(request: Request) -> None:
    """This page may be shown in a frame by the sites of ``FRAME_ANCESTORS`` (the sign-up
    form, embedded on a regional site); every other page may not be framed at all."""
    request.state.embeddable = True


# What a page may add to its policy with ``allow_sources``: origins (or ``https:``) for media,
# requests and frames. Never scripts: those run by nonce or from the site itself.
_EXTENDABLE = ("media-src", "connect-src", "frame-src")
_SOURCE = re.compile(r"^(https:|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$")


def allow_sources(request: Request, sources: Mapping[str, Iterable[str]]) -> None:
    """This page may also load media, make requests or show frames from ``sources`` (directive
    -> origins), e.g. the watch page's stream. A source that is not an origin is left out."""
    extra: dict[str, list[str]] | None = getattr(request.state, "csp_sources", None)
    if extra is None:
        extra = request.state.csp_sources = {}
    for directive, values in sources.items():
        if directive in _EXTENDABLE:
            found = extra.setdefault(directive, [])
            found += [v for v in values if _SOURCE.match(v) and v not in found]


def csp_nonce(request: Request) -> str:
    """This answer's nonce: a ``<script>`` or ``<style>`` runs only with it (``nonce=``)."""
    nonce: str = request.state.csp_nonce
    return nonce


class SecurityHeaders:
    """Plain ASGI middleware: the security headers on every answer.

    HTML gets a Content-Security-Policy without inline script: a ``<script>`` or ``<style>``
    element runs only with this answer's nonce (``csp_nonce``, in ``request.state``), and
    nothing loads from elsewhere but what a page allows with ``allow_sources`` (media, requests
    and frames, e.g. the watch page's stream). Style attributes stay allowed
    (``style-src-attr``): e-mail newsletters shown online are styled that way. No page may be
    framed, except one that calls ``allow_framing``, by the sites listed. The Referrer-Policy
    keeps personal links (their tokens are in the path) from leaking to other sites; HSTS is
    sent behind https.
    """

    def __init__(self, app: ASGIApp, *, https: bool, frame_ancestors: str = "") -> None:
        self.app = app
        self.frame_ancestors = " ".join(frame_ancestors.split()) or "'none'"
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (
                b"permissions-policy",
                b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                b"interest-cohort=(), fullscreen=(self)",
            ),
        ]
        if https:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.common = common

    def policy(
        self, nonce: str, embeddable: bool, extra: Mapping[str, list[str]] | None = None
    ) -> bytes:
        ancestors = self.frame_ancestors if embeddable else "'none'"
        more = {k: "".join(f" {v}" for v in values) for k, values in (extra or {}).items()}
        frames = f"frame-src 'self'{more['frame-src']}; " if more.get("frame-src") else ""
        return (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; "
            f"img-src 'self' data:; media-src 'self' blob: https:{more.get('media-src', '')}; "
            f"connect-src 'self'{more.get('connect-src', '')}; {frames}"
            "object-src 'none'; base-uri 'none'; form-action 'self'; "
            f"frame-ancestors {ancestors}"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = base64.b64encode(os.urandom(16)).decode()
        state = scope.setdefault("state", {})
        state["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.common if k not in present]
                if b"content-security-policy" not in present:
                    embeddable = bool(state.get("embeddable"))
                    policy = self.policy(nonce, embeddable, state.get("csp_sources"))
                    headers.append((b"content-security-policy", policy))
                if b"x-frame-options" not in present and not state.get("embeddable"):
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class RequestTelemetry:
    """Plain ASGI middleware: a server span continuing the caller's trace, and the latency
    histogram by route template (bounded labels). Cheaper than a ``BaseHTTPMiddleware``.
    """

    def __init__(self, app: ASGIApp, service_name: str) -> None:
        self.app = app
        self.service_name = service_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Only a caller that sends trace headers has a trace to continue; skipping the decode
        # and extraction otherwise keeps the hot sign-up path cheap.
        caller = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in _TRACE_HEADERS
        }
        method = scope["method"]
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        with _tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=context_from_headers(caller) if caller else otel_context.Context(),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self.app(scope, receive, send_and_note_status)
            finally:
                template = getattr(scope.get("route"), "path", "unmatched")
                span.update_name(f"{method} {template}")
                span.set_attribute("http.response.status_code", status)
                REQUEST_SECONDS.labels(self.service_name, method, template, str(status)).observe(
                    time.perf_counter() - started
                )


class BodyLimit:
    """Plain ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app
    reads it, so no request makes a service hold more than the limit in memory.

    A declared ``Content-Length`` is judged at once (the server never delivers more than it
    declares). A body without one (chunked, as the dev gateway forwards it) is read up to the
    limit and then handed to the app as received, or refused as soon as it passes the limit.
    The connection stays open: the server reads the rest of the body and throws it away, so a
    client (or proxy) that sends its whole body before reading still gets the 413.
    nginx and the Ingress cap bodies too; this holds wherever the service is reached.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                declared = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)  # no body at all
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app learns it from the replay
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(received, receive), send)

    async def _refuse(self, send: Send) -> None:
        megabytes = self.max_bytes / (1024 * 1024)
        body = json.dumps(
            {"detail": f"Het verzoek is te groot: hooguit {megabytes:g} MB."}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` for an app behind a middleware that read ahead: the messages already read,
    then the connection's own (for the disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
