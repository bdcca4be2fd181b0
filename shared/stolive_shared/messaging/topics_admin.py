"""Create topics from the one definition, and bring those that exist in line with it.

A topic with the wrong partition count breaks key -> partition and Faust co-partitioning. On
Apache Kafka that is a deployment error (fail fast). On the embedded broker it happens when a
client re-creates a topic after a broker restart: there (``repair_partition_mismatch``) the
topic is deleted and created again, which is safe because the outbox republishes.

The configs a topic's definition names (retention, ``max.message.bytes``, ...) are set on a
topic that already exists when they differ (``alter_topic_configs``), so changing the
definition and running the setup job again is how a retention changes. AlterConfigs replaces
a topic's dynamic configs as a whole: the definition is the only place they are set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from stolive_shared.contracts.topics import TopicSpec
from stolive_shared.errors import ConfigurationError, DependencyUnavailable
from stolive_shared.messaging.kafka import create_admin
from stolive_shared.settings import KafkaSettings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {
        t["topic"]: len(t["partitions"])
        for t in described
        if t.get("error_code", 0) == 0 and t["partitions"]
    }


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], *, timeout_s: float = 30.0
) -> dict[str, str]:
    """Make every topic exist with its partition count; return what was done per topic."""
    specs = list(specs)
    admin = create_admin(settings)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaError as exc:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise DependencyUnavailable(
                    f"Kafka at {settings.bootstrap_servers} does not answer: {exc}"
                ) from exc
            await asyncio.sleep(0.5)
            admin = create_admin(settings)
    outcome: dict[str, str] = {}
    try:
        # A client may re-create a topic (wrongly) between our delete and create: look again.
        for _ in range(5):
            if await _converge(admin, specs, settings, outcome):
                break
        else:
            raise ConfigurationError("topics keep being re-created with the wrong partition count")
        await _align_configs(admin, [s for s in specs if s.name not in outcome], settings, outcome)
        for spec in specs:
            outcome.setdefault(spec.name, "exists")
        log.info("topics ensured", extra={"ctx_topics": outcome})
        return outcome
    finally:
        await admin.close()


async def _converge(
    admin: AIOKafkaAdminClient,
    specs: list[TopicSpec],
    settings: KafkaSettings,
    outcome: dict[str, str],
) -> bool:
    """One round of create-or-repair; True when every topic was already right."""
    existing = set(await admin.list_topics())
    counts = await _partition_counts(admin, [s.name for s in specs if s.name in existing])
    wrong = [s for s in specs if s.name in counts and counts[s.name] != s.partitions]
    missing = [s for s in specs if s.name not in existing]
    if not wrong and not missing:
        return True
    if wrong and not settings.repair_partition_mismatch:
        details = ", ".join(f"{s.name} has {counts[s.name]} (want {s.partitions})" for s in wrong)
        raise ConfigurationError(f"topics with the wrong partition count: {details}")
    if wrong:
        await admin.delete_topics([s.name for s in wrong])
        for spec in wrong:
            outcome[spec.name] = f"recreated ({counts[spec.name]} -> {spec.partitions} partitions)"
        missing += wrong
        await asyncio.sleep(0.1)
    response = await admin.create_topics(
        [
            NewTopic(s.name, s.partitions, settings.replication_factor, topic_configs=s.configs)
            for s in missing
        ]
    )
    for name, code, *_ in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise ConfigurationError(f"creating topic {name} failed with error code {code}")
    for spec in missing:
        outcome.setdefault(spec.name, "created")
    return False


ConfigDrift = dict[str, tuple[str | None, str]]


def config_drift(wanted: dict[str, str], current: dict[str, str]) -> ConfigDrift:
    """Each config the definition names whose value on the broker differs: (now, wanted)."""
    return {
        name: (current.get(name), value)
        for name, value in wanted.items()
        if current.get(name) != value
    }


def describe_drift(drift: ConfigDrift) -> str:
    return ", ".join(f"{name} {now} -> {wanted}" for name, (now, wanted) in sorted(drift.items()))


async def _align_configs(
    admin: AIOKafkaAdminClient,
    existing: list[TopicSpec],
    settings: KafkaSettings,
    outcome: dict[str, str],
) -> None:
    """Set the definition's configs on topics that existed before, or report the difference."""
    with_configs = [s for s in existing if s.configs]
    if not with_configs:
        return
    responses = await admin.describe_configs(
        [
            # Every config: Tansu drops the connection when asked for some by name.
            ConfigResource(ConfigResourceType.TOPIC, s.name)
            for s in with_configs
        ]
    )
    current: dict[str, dict[str, str]] = {}
    for response in responses:
        for code, message, _type, name, entries in response.resources:
            if code != 0:
                raise ConfigurationError(f"describing topic {name} failed: {code} {message}")
            current[name] = {entry[0]: entry[1] for entry in entries}
    drifted = {
        spec.name: (spec, drift)
        for spec in with_configs
        if (drift := config_drift(spec.configs, current.get(spec.name, {})))
    }
    if not drifted:
        return
    if not settings.alter_topic_configs:
        for name, (_spec, drift) in drifted.items():
            outcome[name] = f"configs differ ({describe_drift(drift)}); not altered"
            log.warning("topic %s differs from its definition: %s", name, describe_drift(drift))
        return
    altered = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs=spec.configs)
         for name, (spec, _drift) in drifted.items()]
    )  # fmt: skip
    for response in altered:
        for code, message, _type, name, *_ in response.resources:
            if code != 0:
                raise ConfigurationError(f"altering topic {name} failed: {code} {message}")
    for name, (_spec, drift) in drifted.items():
        outcome[name] = f"configs updated ({describe_drift(drift)})"
