"""The one address for people: forwards path prefixes to the services (embedded default only).

``/events/…`` goes to the events service as ``/…`` and so on; each service knows its prefix
(``ROOT_PATH``) and writes its links with it. Bodies are streamed both ways, so Server-Sent
Events pass through. In docker-compose and Kubernetes a real reverse proxy or Ingress does
this job.

The gateway serves everyone through one HTTP client, so it must remember nothing of anyone:
each request goes on with exactly its caller's headers, and each answer comes back with
exactly the service's (``stolive_shared.http.stateless_client`` keeps no cookie jar). It is
the edge: ``X-Forwarded-For`` is the address it saw, never what the caller claims, unless the
caller is one of ``trusted_proxies``. The services' ``/metrics`` are not served here, as in
nginx and the Ingress.

A rush (a thousand teachers opening one event's form at the same moment) queues here, it is
not refused: each service gets ``UPSTREAM_CONNECTIONS`` lanes, each one kept-alive connection
(no new connection per request), and a request waits up to ``QUEUE_TIMEOUT_S`` for a free
lane. A person's action (a form sent) takes its turn before waiting page loads
(``stolive.turns``). The queue is ours (constant cost per request), not httpcore's: with
hundreds of requests waiting inside its pool, httpcore re-scans every waiter on every change
and hands one idle connection to several of them (encode/httpcore#1110, pydantic/httpx2#1075):
measured here, a rush then took minutes and ended in read timeouts. And a lane is a client
with a pool of one: httpcore checks every connection of a pool on every request, here only
the lane's own (measured in a rush of 1,000 browsers: the gateway's CPU fell from 9.5 s with
one pool of 17 to 5.9 s).
A 503 means the service is down (it refused the connection, after retries) or the queue did
not move for ``QUEUE_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from stolive.devmail import DevMailbox
from stolive.turns import Turns, is_action
from stolive_shared.http import stateless_client

if importlib.util.find_spec("sniffio") is None:
    # httpcore tries ``import sniffio`` on every request; without it installed each try is a
    # failed import that searches sys.path again (measured: a fifth of the gateway's CPU in a
    # rush). ``None`` in sys.modules makes that import fail at once, as it would anyway.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
# The gateway's own server sets these on every answer.
_SET_BY_GATEWAY = {"date", "server"}
# What the edge states about the caller; a caller's own claims are dropped.
_SET_AT_THE_EDGE = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-prefix", "forwarded"}

# Requests in flight to one service (its lanes); the rest wait in the gateway. A service is one
# process on one event loop with a database pool of 10: more at once only lengthens each answer.
UPSTREAM_CONNECTIONS = 16
# Server-Sent Events (the live figures) hold their connection for as long as a page is open:
# they never wait in the queue nor take a turn from it, and have connections of their own.
STREAM_CONNECTIONS = 200
# Idle connections are closed before the service would close them (uvicorn: after 5 s), so a
# request never goes out on a connection the service is closing.
KEEPALIVE_EXPIRY_S = 4.0
# How long a request may wait for a free connection: a rush is a queue, not a refusal.
QUEUE_TIMEOUT_S = 120.0


_UNAVAILABLE = "De dienst is tijdelijk niet bereikbaar. Probeer het zo opnieuw."


def _pooled_client(connections: int, keep_alive: int) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=keep_alive,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return stateless_client(
        # connect: a busy service's accept queue; read: an answer or a stream's next chunk.
        timeout=httpx.Timeout(60.0, connect=10.0),
        # retries: connection attempts only (a service restarting), never a request sent.
        transport=httpx.AsyncHTTPTransport(limits=limits, retries=2),
    )


class Upstream:
    """One service: its lanes and the queue in front of them; clients for health checks
    (never queued) and for streams."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.checks = _pooled_client(1, 1)
        self.streams = _pooled_client(STREAM_CONNECTIONS, 4)
        self._lanes = [_pooled_client(1, 1) for _ in range(UPSTREAM_CONNECTIONS)]
        self._free_lanes = list(self._lanes)
        self._turns = Turns(UPSTREAM_CONNECTIONS)

    async def aclose(self) -> None:
        for client in (self.checks, self.streams, *self._lanes):
            await client.aclose()

    async def take_lane(self, method: str) -> httpx.AsyncClient | None:
        """A lane of our own once it is our turn; None after ``QUEUE_TIMEOUT_S`` in the queue."""
        try:
            async with asyncio.timeout(QUEUE_TIMEOUT_S):
                await self._turns.acquire(action=is_action(method))
        except TimeoutError:
            return None
        return self._free_lanes.pop()  # one free lane per turn handed out

    def give_back(self, lane: httpx.AsyncClient) -> None:
        self._free_lanes.append(lane)
        self._turns.release()


class _Forwarded(StreamingResponse):
    """The service's answer streamed to the caller. Its connection and its lane are given back
    however the stream ends: done, failed, or the caller gone (then Starlette may skip the
    background task)."""

    def __init__(self, upstream: httpx.Response, done: Callable[[], None] | None) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code)
        self._upstream = upstream
        self._done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._upstream.aclose()
            finally:
                if self._done is not None:
                    self._done()


def create_gateway(
    upstreams: Mapping[str, str],
    mailbox: DevMailbox | None = None,
    trusted_proxies: frozenset[str] = frozenset(),
) -> FastAPI:
    """``upstreams`` maps a prefix ('events') to a base URL ('http://127.0.0.1:8101');
    ``trusted_proxies`` are the addresses whose ``X-Forwarded-For`` is believed."""
    services = {prefix: Upstream(base) for prefix, base in upstreams.items()}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for service in services.values():
            await service.aclose()

    app = FastAPI(
        title="STO Live gateway", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/registrations/", status_code=307)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        states: dict[str, Any] = {}
        for prefix, service in services.items():
            try:
                answer = await service.checks.get(f"{service.base_url}/readyz", timeout=2.0)
                states[prefix] = (
                    "ready" if answer.status_code == 200 else f"HTTP {answer.status_code}"
                )
            except httpx.HTTPError as exc:
                states[prefix] = f"unreachable: {type(exc).__name__}"
        ready = all(state == "ready" for state in states.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **states}, 200 if ready else 503
        )

    if mailbox is not None:

        @app.get("/mail/", response_class=HTMLResponse, include_in_schema=False)
        async def mail() -> HTMLResponse:
            rows = "".join(
                f"<article><h2>{html.escape(m['subject'])}</h2>"
                f"<p>Aan: {html.escape(m['to'])} · {html.escape(m['date'])}</p>"
                f"<pre>{html.escape(m['text'])}</pre></article>"
                for m in mailbox.messages()
            )
            return HTMLResponse(
                '<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Verzonden e-mail'
                "</title></head><body><main><h1>Verzonden e-mail (ontwikkelpostbus)</h1>"
                f"{rows or '<p>Nog geen e-mail verzonden.</p>'}</main></body></html>"
            )

    @app.api_route(
        "/{prefix}/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def forward(prefix: str, path: str, request: Request) -> Response:
        service = services.get(prefix)
        if service is None or not _public_path(path):
            return JSONResponse({"detail": "Niet gevonden"}, status_code=404)
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() not in _SET_AT_THE_EDGE
        ]
        client_host = request.client.host if request.client else ""
        prior = request.headers.get("x-forwarded-for")
        trusted = bool(prior) and client_host in trusted_proxies
        headers += [
            ("x-forwarded-for", f"{prior}, {client_host}" if trusted else client_host),
            ("x-forwarded-proto", request.url.scheme),
            ("x-forwarded-prefix", f"/{prefix}"),
        ]
        streamed = "text/event-stream" in request.headers.get("accept", "")
        upstream_request = service.streams.build_request(
            request.method,
            f"{service.base_url}/{path}",
            params=str(request.query_params),
            headers=headers,
            content=_body(request),
        )
        lane = None if streamed else await service.take_lane(request.method)
        if not streamed and lane is None:
            return _unavailable()
        done = None if lane is None else functools.partial(service.give_back, lane)
        try:
            upstream = await (lane or service.streams).send(upstream_request, stream=True)
        except BaseException as exc:
            if done is not None:
                done()
            if isinstance(exc, httpx.HTTPError):
                return _unavailable()
            raise
        response = _Forwarded(upstream, done)
        # Every header as the service sent it, repeated ones too (two Set-Cookie stay two).
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.multi_items()
            if k.lower() not in _HOP_BY_HOP and k.lower() not in _SET_BY_GATEWAY
        ]
        return response

    @app.get("/{prefix}", include_in_schema=False)
    async def prefix_root(prefix: str) -> Response:
        if prefix in upstreams:
            return RedirectResponse(f"/{prefix}/", status_code=307)
        return JSONResponse({"detail": "Niet gevonden"}, status_code=404)

    return app


def _unavailable() -> JSONResponse:
    return JSONResponse({"detail": _UNAVAILABLE}, status_code=503, headers={"Retry-After": "2"})


def _public_path(path: str) -> bool:
    """A path the public address forwards: never a service's metrics or internal routes,
    and no dot segment (``/notifications/api/%2e%2e/internal`` resolves to one of them only
    after this check, when the upstream URL is built)."""
    segments = path.split("/")
    if any(segment in (".", "..") for segment in segments):
        return False
    named = [segment for segment in segments if segment]
    return not named or (named[0] != "internal" and named != ["metrics"])


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk
