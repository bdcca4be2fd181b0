"""The watch page: time from navigation to the first frame of a real HLS stream, and the
player's bytes.

Real parts: the whole platform as ``make up`` runs it (the launcher's ``Stack`` on a fresh
database: embedded broker, every service, the gateway), one live STO LIVE broadcast whose
stream is a real HLS stream made by ffmpeg and served on loopback by a small HTTP server (the
one the browser tests use, ``tests/e2e/streams.py``), and Debian's Chromium driven by
playwright. Each run is a fresh browser context (nothing cached, as for a first visit):

1. navigate to ``/events/watch/<id>`` through the gateway;
2. the viewer presses play the moment the player has the stream's metadata (``loadedmetadata``:
   the page has no autoplay, so a person's reaction time is left out, not guessed);
3. the first frame is the first ``requestVideoFrameCallback``: a frame handed to the screen.

Times are ``performance.now()`` in the page, i.e. from the navigation's start. Two ways, as
browsers play HLS: natively (Chromium, Safari) and with the vendored hls.js (Firefox; the
page is told the browser cannot play HLS itself). The bytes are what the page transfers from
the platform (HTML, scripts; its CSS is inline), counted from the browser's own transfer
sizes; the stream's bytes are not the player's. The ceiling is the same stream in a bare page
(``<video src=…m3u8>``, served by the stream server, natively): the first frame without the
platform, so the ratio is what the platform's page costs on top.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, fresh_database
from bench.result import BenchResult
from stolive.stack import SERVICES, Stack, StackConfig
from tests.e2e.streams import PLAYLIST, StreamServer, make_hls, serve
from tests.e2e.test_watch_player import WITHOUT_NATIVE_HLS
from tests.support import CHROMIUM, CHROMIUM_ARGS

# Injected before the page's own scripts: press play at the first metadata, note the times.
MEASURE = """(() => {
  const marks = (window.__marks = {});
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("video");
    if (!video) { return; }
    video.muted = true;  // headless Chromium's autoplay rule; the page plays with sound
    video.addEventListener("loadedmetadata", () => {
      marks.metadata = performance.now();
      video.play();
    }, { once: true });
    const frame = () => { marks.frame = performance.now(); };
    if (video.requestVideoFrameCallback) {
      video.requestVideoFrameCallback(frame);
    } else {
      video.addEventListener("timeupdate", frame, { once: true });
    }
  });
})();"""
BARE_PAGE = "<!doctype html><title>bare</title><video src='{src}' playsinline></video>"
TIMEOUT_MS = 30_000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def _platform(data_dir: Path) -> AsyncIterator[Stack]:
    async with fresh_database() as database_url:
        config = StackConfig(
            data_dir=data_dir,
            gateway_port=free_port(),
            service_ports={service: free_port() for service in SERVICES},
            broker_port=free_port(),
            smtp_port=free_port(),
            database_url=database_url,
            seed=False,
            extra_env={"LOG_LEVEL": "WARNING"},
        )
        stack = Stack(config, report=lambda _line: None)
        try:
            await stack.start()
            yield stack
        finally:
            await stack.stop()


async def _live_broadcast(stack: Stack, stream_url: str) -> str:
    base = stack.config.public_base_url
    headers = {"Authorization": f"Bearer {stack.organiser_token}"}
    starts = datetime.now(UTC) + timedelta(days=1)
    async with httpx.AsyncClient(base_url=f"{base}/events", headers=headers) as api:
        created = await api.post(
            "/api/events",
            json={
                "kind": "webinar",
                "title": "STO LIVE benchmark",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "stream_url": stream_url,
            },
        )
        created.raise_for_status()
        event_id: str = created.json()["id"]
        for step in ("publish", "go-live"):
            (await api.post(f"/api/events/{event_id}/{step}")).raise_for_status()
    return event_id


async def _one_run(browser: Any, url: str, *, native: bool, own_origin: str) -> dict[str, Any]:
    """One first visit: its first-frame time (ms) and the bytes it took from ``own_origin``."""
    context = await browser.new_context()
    try:
        if not native:
            await context.add_init_script(WITHOUT_NATIVE_HLS)
        await context.add_init_script(MEASURE)
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_function(
            "() => window.__marks && window.__marks.frame", timeout=TIMEOUT_MS
        )
        marks = await page.evaluate("window.__marks")
        # The browser's own count of body bytes: the document and every script or style sheet
        # from the platform (hls.js's worker too); the stream comes from another origin.
        entries = await page.evaluate(
            """() => performance.getEntriesByType("navigation")
                 .concat(performance.getEntriesByType("resource"))
                 .map(e => [e.name, e.initiatorType, e.encodedBodySize])"""
        )
        transferred: dict[str, int] = {}
        for address, initiator, size in entries:
            if not address.startswith(own_origin):
                continue
            name = address.split("?", 1)[0].rsplit("/", 1)[-1]
            if initiator == "navigation":
                name = "HTML"
            elif not name.endswith((".js", ".css")):
                continue  # the beacons and the status poll: the viewing, not the player
            transferred[name] = transferred.get(name, 0) + size
        # Leave the page first, so its leave beacon goes out before the browser context closes.
        await page.goto("about:blank")
        return {"frame_ms": marks["frame"], "metadata_ms": marks["metadata"], "bytes": transferred}
    finally:
        await context.close()


async def _runs(
    browser: Any, url: str, runs: int, *, native: bool, own_origin: str
) -> dict[str, Any]:
    await _one_run(browser, url, native=native, own_origin=own_origin)  # warm the servers
    results = [
        await _one_run(browser, url, native=native, own_origin=own_origin) for _ in range(runs)
    ]
    frames = [r["frame_ms"] for r in results]
    return {
        "runs": runs,
        "p50_ms": statistics.median(frames),
        "p95_ms": _percentile(frames, 0.95),
        "metadata_p50_ms": statistics.median(r["metadata_ms"] for r in results),
        "bytes": results[-1]["bytes"],
    }


def _bytes_line(transferred: dict[str, int]) -> str:
    parts = ", ".join(f"{name} {size / 1024:.1f} KiB" for name, size in sorted(transferred.items()))
    return f"{sum(transferred.values()) / 1024:.1f} KiB ({parts}; CSS inline in the HTML)"


async def run(seconds: float) -> BenchResult:
    from playwright.async_api import async_playwright

    runs = max(5, round(seconds))
    with tempfile.TemporaryDirectory(prefix="stolive-bench-watch-") as folder:
        root = Path(folder)
        make_hls(root / "recording", seconds=60)
        (root / "cdn").mkdir()
        with serve(root / "cdn") as cdn:
            cdn.publish(root / "recording", "live")
            stream_url = cdn.url(f"live/{PLAYLIST}")
            (root / "cdn" / "bare.html").write_text(BARE_PAGE.format(src=stream_url))
            async with _platform(root / "stack") as stack, async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                try:
                    event_id = await _live_broadcast(stack, stream_url)
                    base = stack.config.public_base_url
                    watch = f"{base}/events/watch/{event_id}?bench={uuid.uuid4().hex[:6]}"
                    native = await _runs(browser, watch, runs, native=True, own_origin=base)
                    hls_js = await _runs(browser, watch, runs, native=False, own_origin=base)
                    bare = await _bare(browser, cdn, runs)
                finally:
                    await browser.close()
    return BenchResult(
        name="watch",
        figure=native["p50_ms"],
        unit="ms to 1st frame (p50)",
        ceiling=bare["p50_ms"],
        details={
            "runs per way": runs,
            "native HLS: navigation -> first frame p50 / p95": (
                f"{native['p50_ms']:.0f} / {native['p95_ms']:.0f} ms"
                f" (stream metadata p50 {native['metadata_p50_ms']:.0f} ms)"
            ),
            "hls.js: navigation -> first frame p50 / p95": (
                f"{hls_js['p50_ms']:.0f} / {hls_js['p95_ms']:.0f} ms"
                f" (stream metadata p50 {hls_js['metadata_p50_ms']:.0f} ms)"
            ),
            "bare <video> page, native (ceiling) p50 / p95": (
                f"{bare['p50_ms']:.0f} / {bare['p95_ms']:.0f} ms"
            ),
            "player bytes, native": _bytes_line(native["bytes"]),
            "player bytes, hls.js": _bytes_line(hls_js["bytes"]),
        },
    )


async def _bare(browser: Any, cdn: StreamServer, runs: int) -> dict[str, Any]:
    url = cdn.url("bare.html")
    return await _runs(browser, url, runs, native=True, own_origin=cdn.url(""))
