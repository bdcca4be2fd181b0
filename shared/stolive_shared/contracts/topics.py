"""Every topic STO Live uses, with its partition count and configs: the one definition.

The launcher (embedded broker), the docker-compose topic job, the Kubernetes job and the test
harness all create topics from ``ALL_TOPICS``. Faust's own topics are listed here too, because
the embedded broker would otherwise auto-create them with 4 partitions and a Faust table would
crash-loop with ``PartitionsMismatch``. (The analytics app runs with ``topic_disable_leader``,
so it needs no leader topic.)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

_WEEK_MS = 7 * 24 * 3600 * 1000

# The largest record (batch) a business topic accepts: Apache Kafka's ``max.message.bytes``,
# 1 MB by default; the embedded broker has no limit. Above the codec's 1 MB message limit on
# purpose: an oversized record (a 2 MB poison value) reaches its consumers and is dead-lettered
# with the error, instead of failing whoever produced it. A dead letter is that record plus its
# error headers, so dead-letter topics take a little more; the dead-letter producers use
# ``MAX_DEAD_LETTER_BYTES`` as their request limit and consumers fetch at least that much.
MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_DEAD_LETTER_BYTES = MAX_RECORD_BYTES + 64 * 1024


def _business(retention_ms: int) -> dict[str, str]:
    return {"retention.ms": str(retention_ms), "max.message.bytes": str(MAX_RECORD_BYTES)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def dlq(self) -> TopicSpec:
        """The dead-letter topic for records of this topic that cannot be handled."""
        return TopicSpec(
            f"{self.name}.dlq",
            1,
            {"retention.ms": str(4 * _WEEK_MS), "max.message.bytes": str(MAX_DEAD_LETTER_BYTES)},
        )


EVENTS = TopicSpec("sto.events", 4, _business(52 * _WEEK_MS))
REGISTRATIONS = TopicSpec("sto.registrations", 8, _business(52 * _WEEK_MS))
NOTIFICATIONS = TopicSpec("sto.notifications", 4, _business(4 * _WEEK_MS))
ANALYTICS = TopicSpec("sto.analytics", 4, _business(52 * _WEEK_MS))
VIEWER_ACTIVITY = TopicSpec("sto.viewer-activity", 8, _business(2 * _WEEK_MS))
# Each outbox relay writes a tiny probe now and then to a partition of its own: an offset that
# goes backwards tells the relay the broker lost its data, and it republishes what it retained.
# Its own partition, because on a shared one the other relays' probes after a loss could push
# the offsets past what this relay saw before it and hide the loss from it.
RELAY_SCHEMAS = ("events", "registrations", "notifications", "analytics")
RELAY_PROBES = TopicSpec("stolive.relay-probes", 8, {"retention.ms": str(24 * 3600 * 1000)})


def probe_partition(schema: str) -> int:
    """A service relay's own probe partition; any other schema (a test's) one of the rest."""
    if schema in RELAY_SCHEMAS:
        return RELAY_SCHEMAS.index(schema)
    spare = RELAY_PROBES.partitions - len(RELAY_SCHEMAS)
    return len(RELAY_SCHEMAS) + zlib.crc32(schema.encode()) % spare


BUSINESS_TOPICS: tuple[TopicSpec, ...] = (
    EVENTS,
    REGISTRATIONS,
    NOTIFICATIONS,
    VIEWER_ACTIVITY,
    ANALYTICS,
)

ANALYTICS_APP_ID = "sto-analytics"
# Faust tables, each co-partitioned with the topic that changes it (all keyed by event id):
# registration id -> status; registration id -> profile (viewer id, region, role, check-in);
# the live figures of an event (count, peak, how far beacons were counted).
ANALYTICS_TABLES: dict[str, TopicSpec] = {
    "registration_status": REGISTRATIONS,
    "registrant_profiles": REGISTRATIONS,
    "live_viewers": VIEWER_ACTIVITY,
}


def faust_internal_topics() -> tuple[TopicSpec, ...]:
    changelogs = tuple(
        TopicSpec(
            f"{ANALYTICS_APP_ID}-{table}-changelog",
            source.partitions,
            {"cleanup.policy": "compact"},
        )
        for table, source in ANALYTICS_TABLES.items()
    )
    return changelogs


ALL_TOPICS: tuple[TopicSpec, ...] = (
    *BUSINESS_TOPICS,
    *(topic.dlq for topic in BUSINESS_TOPICS),
    RELAY_PROBES,
    *faust_internal_topics(),
)
