"""A small, fast HTTP/1.1 load generator, run as its own process so it does not share the
server's event loop: ``python -m bench.loadgen --url ... --connections 50 --seconds 10``.

Keep-alive connections each send one request at a time (closed loop), or at a fixed total
``--rate`` (open loop, for latency at a given load). ``--body`` may contain ``{n}``, replaced
by a request counter (unique emails, say) and ``{k}`` by ``n % --keys`` (spread over keys).
Prints one JSON object: requests, statuses, requests/s, latency p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def _request_bytes(method: str, host: str, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "")
    template = args.body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    counter = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + args.seconds
    interval = args.connections / args.rate if args.rate else 0.0

    async def connection(index: int) -> None:
        nonlocal counter, errors
        reader, writer = await asyncio.open_connection(host, port)
        next_at = started + (interval * index / args.connections if interval else 0.0)
        while True:
            now = loop.time()
            if now >= deadline:
                break
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at += interval
            counter += 1
            n = counter
            body = template.replace("{n}", str(n)).replace("{k}", str(n % args.keys)).encode()
            payload = _request_bytes(args.method, f"{host}:{port}", path, body, args.content_type)
            sent = time.perf_counter()
            try:
                writer.write(payload)
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(connection(i) for i in range(args.connections)))
    elapsed = loop.time() - started
    latencies.sort()

    def percentile(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return {
        "requests": len(latencies),
        "ok": ok,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 3),
        "ok_per_s": round(ok / elapsed, 1),
        "p50_ms": round(percentile(0.50), 2),
        "p99_ms": round(percentile(0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="total requests/s (open loop)")
    parser.add_argument("--keys", type=int, default=1, help="{k} cycles over this many values")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
