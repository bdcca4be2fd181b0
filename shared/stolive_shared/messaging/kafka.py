"""Producer, consumer and admin clients built from ``KafkaSettings``.

Producer options are set explicitly: ``acks="all"`` always (``acks=0`` breaks Tansu), and
idempotence only where the broker supports it (a setting: on for Apache Kafka).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from stolive_shared.settings import KafkaSettings


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile)
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


def create_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        **connection_options(settings),
        "acks": "all",
        "enable_idempotence": settings.enable_idempotence,
        "linger_ms": settings.linger_ms,
        "compression_type": settings.compression_type,
        "max_request_size": 2_097_152,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(
    settings: KafkaSettings, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that commits by hand and starts from the earliest offset.

    ``earliest`` because the embedded broker's "latest" offset is wrong, and because a new
    group must see every retained message (consumers are idempotent by message id).
    """
    options: dict[str, Any] = {
        **connection_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_poll_interval_ms": 300_000,
        # Larger than any record we accept (1 MB), so an oversized poison record is read and
        # dead-lettered instead of stalling the partition.
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "rebalance_timeout_ms": settings.session_timeout_ms * 2,
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)


def create_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(settings))
