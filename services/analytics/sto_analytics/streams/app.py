"""The Faust application, configured for both the embedded broker and Apache Kafka.

Settings that the embedded Tansu broker needs (see the programme's BROKER.md): at-least-once
processing (no transactions there), ``producer_max_batch_size=1`` (table recovery was lossy
with batching), short session timeouts (a rebalance takes half of one), no standby replicas,
memory store, and no topic declaration: every topic, the changelogs too, is created from
``stolive_shared.contracts.topics`` before a worker starts. The consumer's fetch wait is
lowered and the per-message Monitor work removed (``tuning``).
"""

from __future__ import annotations

import faust

from sto_analytics.config import AnalyticsSettings
from sto_analytics.streams.tuning import FastFetchConsumerThread, LeanMonitor, StoLiveFaustApp
from stolive_shared.contracts.topics import (
    ANALYTICS_APP_ID,
    MAX_DEAD_LETTER_BYTES,
    MAX_RECORD_BYTES,
)


def create_faust_app(settings: AnalyticsSettings) -> faust.App:
    kafka = settings.kafka
    FastFetchConsumerThread.fetch_max_wait_ms = kafka.fetch_max_wait_ms
    app = StoLiveFaustApp(
        ANALYTICS_APP_ID,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        store="memory://",
        autodiscover=False,
        processing_guarantee="at_least_once",
        producer_max_batch_size=1,
        # A poison record may be larger than any valid message (the codec's limit is 1 MB, a
        # topic takes up to MAX_RECORD_BYTES): read it and dead-letter it whole.
        producer_max_request_size=MAX_DEAD_LETTER_BYTES,
        consumer_max_fetch_size=2 * MAX_RECORD_BYTES,
        producer_acks=-1,
        broker_session_timeout=kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000,
        broker_request_timeout=max(kafka.request_timeout_ms / 1000, 30.0),
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        datadir=settings.faust_data_dir,
        broker_credentials=_credentials(settings),
        Monitor=LeanMonitor,
    )
    return app


def _credentials(settings: AnalyticsSettings) -> faust.auth.Credentials | None:
    kafka = settings.kafka
    if not kafka.security_protocol.startswith("SASL"):
        return None
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    return faust.SASLCredentials(
        username=kafka.sasl_username or "",
        password=password,
        mechanism=kafka.sasl_mechanism or "PLAIN",
    )
