"""``stolive up``: the whole platform on this machine, in one command; ``stolive topics``;
and the operators' commands (``stolive status``, ``dlq``, ``backup``, ``restore``: ``stolive.ops``).

Errors a person can fix (a port in use, a database that does not answer) end in one line that
says what to do, not a traceback.

Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed) all stop every part in order, also
while the platform is still starting; a launcher killed without a word takes its children
along by itself (``stolive.processes``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from stolive.embedded_postgres import default_data_root
from stolive.ops import add_ops_commands
from stolive.ops import run as run_ops
from stolive.stack import SERVICES, Stack, StackConfig
from stolive_shared.contracts.topics import ALL_TOPICS
from stolive_shared.errors import ConfigurationError, DependencyUnavailable
from stolive_shared.logging import setup_logging
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.runtime import run_async
from stolive_shared.settings import KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(line: str) -> None:
    """A line for the terminal; nothing when the terminal is gone (after SIGHUP a write
    fails, and the stop must go on)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


async def up(config: StackConfig) -> None:
    stack = Stack(config, report=say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    say(f"STO Live starting (data in {config.data_dir})")
    starting = asyncio.create_task(stack.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # a stop signal while starting: stop what has started
        starting.cancel()
    try:
        await starting
    except BaseException:
        stopped.cancel()
        if stop.is_set():
            say("stopping ...")
        await stack.stop()
        if stop.is_set():
            return
        raise
    base = config.public_base_url
    say("")
    say(f"STO Live is running at {base}/")
    say(f"  sign-up pages       {base}/registrations/")
    for service in SERVICES:
        say(f"  {service:<19} {base}/{service}/docs")
    if stack.mailbox is not None:
        say(f"  sent email          {base}/mail/")
    say(f"  organiser token     {stack.organiser_token}")
    say("Press Ctrl-C to stop.")
    await stopped
    say("stopping ...")
    await stack.stop()


async def topics(bootstrap: str) -> None:
    outcome = await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), ALL_TOPICS)
    for name, what in sorted(outcome.items()):
        say(f"{name}: {what}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="stolive", description="Run STO Live on this machine.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("up", help="start every part and serve the platform on one address")
    run.add_argument("--data-dir", type=Path, default=None, help="where embedded data lives")
    run.add_argument("--no-seed", action="store_true", help="do not create the demo events")
    run.add_argument("--analytics-workers", type=int, default=1)
    make_topics = commands.add_parser("topics", help="create the topics on KAFKA_BOOTSTRAP_SERVERS")
    make_topics.add_argument("--bootstrap-servers", default=None)
    add_ops_commands(commands)
    args = parser.parse_args(argv)
    if getattr(args, "ops", None):
        run_ops(args)
    setup_logging("stolive", "WARNING", as_json=False)
    logging.getLogger("stolive").setLevel(logging.WARNING)
    try:
        if args.command == "up":
            config = StackConfig.from_environment(args.data_dir or default_data_root(REPO_ROOT))
            config.seed = not args.no_seed
            config.analytics_workers = args.analytics_workers
            run_async(up(config))
        else:
            bootstrap = args.bootstrap_servers or KafkaSettings().bootstrap_servers
            run_async(topics(bootstrap))
    except (ConfigurationError, DependencyUnavailable) as exc:
        sys.stderr.write(f"stolive: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
