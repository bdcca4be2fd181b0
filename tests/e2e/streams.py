"""A real HLS stream for the watch page's browser tests: made by ffmpeg (a Debian package,
``scripts/ensure-system-packages``) from a test pattern and a tone, served on loopback by a
small HTTP server with CORS headers, as a streaming CDN serves it.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLAYLIST = "out.m3u8"


def make_hls(folder: Path, seconds: int = 90) -> Path:
    """A VOD HLS stream of ``seconds`` (2-second segments, a key frame every second) in
    ``folder``; its playlist."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
            "-c:a", "aac",
            "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
            str(folder / PLAYLIST),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return folder / PLAYLIST


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012  (the base class's own attribute)
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        "": "application/octet-stream",
    }
    served: Counter[str]

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def send_head(self) -> Any:
        self.served[self.path.split("?", 1)[0]] += 1
        return super().send_head()

    def log_message(self, *_args: Any) -> None:
        pass


@dataclass
class StreamServer:
    root: Path
    port: int
    served: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def publish(self, source: Path, path: str) -> None:
        """Copy the stream in ``source`` to ``path`` (a folder under the root): it goes on air."""
        shutil.copytree(source, self.root / path, dirs_exist_ok=True)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[StreamServer]:
    """Serve ``root`` on a free loopback port until the block ends."""
    served: Counter[str] = Counter()
    handler = type("StreamHandler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StreamServer(root, server.server_address[1], served)
    finally:
        server.shutdown()
        server.server_close()
