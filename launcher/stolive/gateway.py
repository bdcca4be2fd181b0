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
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.background import BackgroundTask

from stolive.devmail import DevMailbox
from stolive_shared.http import stateless_client

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
# The gateway's own server sets these on every answer.
_SET_BY_GATEWAY = {"date", "server"}
# What the edge states about the caller; a caller's own claims are dropped.
_SET_AT_THE_EDGE = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-prefix", "forwarded"}


def create_gateway(
    upstreams: Mapping[str, str],
    mailbox: DevMailbox | None = None,
    trusted_proxies: frozenset[str] = frozenset(),
) -> FastAPI:
    """``upstreams`` maps a prefix ('events') to a base URL ('http://127.0.0.1:8101');
    ``trusted_proxies`` are the addresses whose ``X-Forwarded-For`` is believed."""
    client = stateless_client(timeout=httpx.Timeout(30.0, connect=2.0))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

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
        for prefix, base in upstreams.items():
            try:
                answer = await client.get(f"{base}/readyz", timeout=2.0)
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
        base = upstreams.get(prefix)
        if base is None or not _public_path(path):
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
        upstream_request = client.build_request(
            request.method,
            f"{base}/{path}",
            params=str(request.query_params),
            headers=headers,
            content=_body(request),
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError:
            return JSONResponse(
                {"detail": "De dienst is tijdelijk niet bereikbaar. Probeer het zo opnieuw."},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        response = StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
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
