"""Topics from the one definition on a broker that already has them: partition counts are
checked, and configs that differ from the definition are set (Apache Kafka) or reported (the
embedded broker, which cannot alter configs)."""

from __future__ import annotations

import uuid

from aiokafka.admin import NewTopic

from stolive_shared.contracts.topics import TopicSpec
from stolive_shared.messaging.kafka import create_admin
from stolive_shared.messaging.topics_admin import config_drift, ensure_topics
from stolive_shared.settings import KafkaSettings

FOUR_MIB, ONE_MIB = str(4 * 1024 * 1024), str(1024 * 1024)


def test_drift_is_each_defined_config_whose_value_differs() -> None:
    wanted = {"retention.ms": "604800000", "max.message.bytes": FOUR_MIB}
    current = {"retention.ms": "604800000", "max.message.bytes": ONE_MIB, "segment.ms": "1"}
    assert config_drift(wanted, current) == {"max.message.bytes": (ONE_MIB, FOUR_MIB)}
    assert config_drift(wanted, {}) == {
        "retention.ms": (None, "604800000"),
        "max.message.bytes": (None, FOUR_MIB),
    }
    assert config_drift(wanted, {**current, "max.message.bytes": FOUR_MIB}) == {}


async def test_an_existing_topic_with_older_configs_is_reported_not_recreated(
    kafka: KafkaSettings,
) -> None:
    assert not kafka.alter_topic_configs, "the embedded broker cannot alter configs"
    older, current = f"test.older-{uuid.uuid4().hex[:8]}", f"test.current-{uuid.uuid4().hex[:8]}"
    definition = {"retention.ms": "604800000", "max.message.bytes": FOUR_MIB}
    admin = create_admin(kafka)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(older, 2, 1, topic_configs={**definition, "max.message.bytes": ONE_MIB}),
                NewTopic(current, 2, 1, topic_configs=definition),
            ]
        )
    finally:
        await admin.close()

    outcome = await ensure_topics(
        kafka, [TopicSpec(older, 2, definition), TopicSpec(current, 2, definition)]
    )

    assert outcome == {
        older: f"configs differ (max.message.bytes {ONE_MIB} -> {FOUR_MIB}); not altered",
        current: "exists",
    }
