"""``stolive up``: the whole platform on this machine, in one command; ``stolive topics``.

Errors a person can fix (a port in use, a database that does not answer) end in one line that
says what to do, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from stolive.embedded_postgres import default_data_root
from stolive.stack import SERVICES, Stack, StackConfig
from stolive_shared.contracts.topics import ALL_TOPICS
from stolive_shared.errors import ConfigurationError, DependencyUnavailable
from stolive_shared.logging import setup_logging
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.runtime import run_async
from stolive_shared.settings import KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def up(config: StackConfig) -> None:
    stack = Stack(config, report=say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say(f"STO Live starting (data in {config.data_dir})")
    try:
        await stack.start()
    except BaseException:
        await stack.stop()
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
    await stop.wait()
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
    args = parser.parse_args(argv)
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
