"""``python -m bench [NAME ...] [--seconds N]``: run benchmarks and print one table.

Names: beacons, signups, mailing, analytics, watch, rush. Each benchmark module has
``async def run(seconds: float) -> BenchResult``; a missing module is reported, not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys

from bench.result import BenchResult

BENCHMARKS = ("beacons", "signups", "mailing", "analytics", "watch", "rush")


async def run_all(names: list[str], seconds: float) -> list[BenchResult]:
    results = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"{name}: not written yet")
            continue
        result: BenchResult = await module.run(seconds)
        for key, value in result.details.items():
            print(f"  {name} {key}: {value}")
        print(result.line())
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results = asyncio.run(run_all(args.names or list(BENCHMARKS), args.seconds))
    if len(results) > 1:
        print()
        print(f"{'benchmark':<12} {'figure':>14} {'unit':<22} {'ceiling':>10} {'ratio':>6}")
        for r in results:
            print(
                f"{r.name:<12} {r.figure:>14,.0f} {r.unit:<22} {r.ceiling:>10,.0f} {r.ratio:>6.2f}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
