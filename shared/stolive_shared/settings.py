"""Settings every service reads from its environment (pydantic-settings).

Settings are built by ``__main__`` or by tests and passed in; nothing here runs at import time.
Broker-specific behaviour (idempotence, SASL/SSL) is a setting, because the embedded Tansu
broker lacks features Apache Kafka has (see ``../shared/BROKER.md`` in the programme's notes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", ""}


class KafkaSettings(BaseSettings):
    """How to reach Kafka; the same fields serve the embedded broker and Apache Kafka."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu 0.6 answers InitProducerId with an error: idempotence must be off there.
    enable_idempotence: bool = False
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    # Copies of each partition: 1 for the embedded broker and a one-node Kafka, 3 in production.
    replication_factor: int = 1
    linger_ms: int = 5
    compression_type: Literal["gzip", "lz4", "snappy", "zstd"] | None = None
    # A rebalance on Tansu takes half the session timeout: keep it short.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    request_timeout_ms: int = 15_000
    # A waiting fetch is not woken by new data on Tansu; latency is about half of this.
    fetch_max_wait_ms: int = 100
    # The embedded broker forgets topics on restart and clients re-create them with the wrong
    # partition count: there, a topic with the wrong count is deleted and created again.
    repair_partition_mismatch: bool = False
    # Bring the configs of existing topics (retention, max.message.bytes, ...) to the
    # definition. Tansu cannot alter configs (it panics): the launcher and the tests turn this
    # off, and then a difference is only reported.
    alter_topic_configs: bool = True


class ServiceSettings(BaseSettings):
    """What every service needs: database, Kafka, HTTP, telemetry and links."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "stolive"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/stolive"
    db_schema: str = "public"
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The path prefix under which the gateway (or Ingress) serves this service.
    root_path: str = ""
    # Proxies whose X-Forwarded-* headers uvicorn believes (addresses or networks, comma
    # separated): the gateway (nginx, the launcher's) and nothing else. "*" trusts anyone
    # who can reach the port to claim any client address.
    forwarded_allow_ips: str = "127.0.0.1"
    # Where people reach the platform: used for links in pages and emails.
    public_base_url: str = "http://127.0.0.1:8000"
    # Request bodies larger than this are answered 413 (0: no limit). The largest honest one,
    # a mailing's text, is a few kilobytes; nginx and the Ingress allow 2 MB too.
    max_body_bytes: int = 2 * 1024 * 1024

    outbox_retention_days: float = 7.0
    outbox_batch_size: int = 500
    consumer_max_attempts: int = 3

    link_secret: SecretStr = SecretStr("dev-only-link-secret-change-me-in-production")
    environment: Literal["development", "test", "production"] = "development"

    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError("db_schema must be a plain SQL identifier")
        return value

    def check_production_ready(self) -> None:
        """Refuse placeholder secrets when running as production."""
        if self.environment != "production":
            return
        secret = self.link_secret.get_secret_value()
        if secret.lower() in _PLACEHOLDER_SECRETS or "change-me" in secret:
            raise ValueError("LINK_SECRET must be set to a real secret in production")
        sasl = self.kafka.sasl_password.get_secret_value() if self.kafka.sasl_password else ""
        for name, value in (("DATABASE_URL", self.database_url), ("KAFKA_SASL_PASSWORD", sasl)):
            if _is_placeholder(value):
                raise ValueError(f"{name} holds a placeholder: set a real secret in production")


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return "change-me" in lowered or "changeme" in lowered or "changethis" in lowered
