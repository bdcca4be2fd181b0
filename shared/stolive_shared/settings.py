"""Settings every service reads from its environment (pydantic-settings).

Settings are built by ``__main__`` or by tests and passed in; nothing here runs at import time.
Broker-specific behaviour (idempotence, SASL/SSL) is a setting, because the embedded Tansu
broker lacks features Apache Kafka has (see ``../shared/BROKER.md`` in the programme's notes).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stolive_shared.secrets import folder_secret

_PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", ""}
# Secrets shorter than this (in bytes) are refused in production: HMAC keys of SHA-256.
MIN_SECRET_BYTES = 32


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
    # Prometheus metrics on a port of their own (0: at /metrics on the HTTP port). Deployments
    # set it, so the public address (the Ingress, nginx) never reaches the metrics.
    metrics_port: int = 0
    # Request bodies larger than this are answered 413 (0: no limit). The largest honest one,
    # a mailing's text, is a few kilobytes; nginx and the Ingress allow 2 MB too.
    max_body_bytes: int = 2 * 1024 * 1024

    outbox_retention_days: float = 7.0
    outbox_batch_size: int = 500
    consumer_max_attempts: int = 3
    # A deadlock or serialisation failure is retried with backoff this long before the message
    # is dead-lettered (a database that is away is waited for, however long).
    consumer_transient_retry_s: float = 30.0

    # Signs personal links (manage, watch, unsubscribe, certificate, check-in).
    link_secret: SecretStr | None = None
    # Keys organiser session ids and the sign-up API's form tokens; never the link secret.
    session_secret: SecretStr | None = None
    environment: Literal["development", "test", "production"] = "development"
    # Where a process outside production keeps the secrets it was not given (``secrets``).
    data_dir: Path = Field(
        default=Path(".stolive"), validation_alias=AliasChoices("stolive_data_dir", "data_dir")
    )

    # Organiser sessions end after this long without a request, and this long after login.
    organiser_session_idle_minutes: float = 120.0
    organiser_session_max_hours: float = 12.0
    # An e-mailed sign-in link works once, for this long.
    sign_in_link_minutes: float = 15.0
    # The audit log (who exported, erased, checked in, changed what) is kept this long.
    audit_retention_days: int = 730
    # Sites allowed to show this platform's pages in a frame (CSP frame-ancestors), space
    # separated, e.g. "https://www.sterktechniekonderwijs.nl"; empty: no site may.
    frame_ancestors: str = ""
    # /docs and /openapi.json: on by default, except in production.
    api_docs: bool | None = None

    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True

    # The privacy and accessibility statements (served by events at /events/privacyverklaring
    # and /events/toegankelijkheidsverklaring) take their facts from here, never from a template.
    # Who decides what happens to the personal data (the AVG's verwerkingsverantwoordelijke).
    privacy_controller: str = "Sterk Techniekonderwijs (programmabureau)"
    # Where a person asks about, or exercises a right over, their personal data.
    privacy_contact_email: str = "privacy@sterktechniekonderwijs.nl"
    # Where a person reports an accessibility problem of the pages.
    accessibility_contact_email: str = "toegankelijkheid@sterktechniekonderwijs.nl"
    # The privacy statement's version, the date it was set (YYYY-MM-DD): the version a person
    # agrees to on the sign-up and newsletter forms. A new text gets a new date.
    privacy_statement_version: str = "2026-12-02"
    # When the accessibility statement was drawn up (YYYY-MM-DD), after the last check.
    accessibility_statement_date: str = "2026-12-02"
    # Days after an event that its registrations keep name, e-mail, school, role, region and
    # profiles; then they are anonymised (the counts stay). 180: by then the follow-up e-mails
    # are sent, certificates downloaded and the half-yearly report to the programme is done.
    registration_retention_days: int = Field(default=180, ge=1)
    # Days an issued attendance certificate keeps working (three years: long enough to show
    # it for a teacher's professional development record).
    certificate_retention_days: int = Field(default=1095, ge=1)
    # Days a newsletter sign-up that was never confirmed (double opt-in) is kept.
    unconfirmed_subscription_days: int = Field(default=7, ge=1)
    # Days the content of a sent e-mail is kept (for questions and bounces); the fact that it
    # was sent, with date and subject, stays with the registration.
    mail_content_retention_days: int = Field(default=90, ge=1)
    # How often each service's retention job looks for what has passed its period (seconds).
    retention_interval_s: float = Field(default=3600.0, gt=0)

    @field_validator("privacy_statement_version", "accessibility_statement_date")
    @classmethod
    def _is_a_date(cls, value: str) -> str:
        if date.fromisoformat(value).isoformat() != value:  # a ValueError too if no real day
            raise ValueError("must be a date written as YYYY-MM-DD")
        return value

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError("db_schema must be a plain SQL identifier")
        return value

    _keys: dict[str, str] = PrivateAttr(default_factory=dict)

    def link_key(self) -> str:
        """The key of personal links: ``LINK_SECRET``, else (outside production) the data
        folder's own."""
        return self._key("link_secret", self.link_secret)

    def session_key(self) -> str:
        """The key of organiser sessions and form tokens: ``SESSION_SECRET``, else (outside
        production) the data folder's own."""
        return self._key("session_secret", self.session_secret)

    def _key(self, name: str, given: SecretStr | None) -> str:
        if given is not None and given.get_secret_value():
            return given.get_secret_value()
        if self.environment == "production":
            raise ValueError(f"{name.upper()} must be set in production")
        if name not in self._keys:
            self._keys[name] = folder_secret(self.data_dir, name.replace("_", "-"))
        return self._keys[name]

    @property
    def https(self) -> bool:
        """People reach the platform over https (cookies are then Secure, HSTS is sent)."""
        return urlsplit(self.public_base_url).scheme == "https"

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    def check_production_ready(self) -> None:
        """Refuse missing, placeholder, short or shared secrets when running as production."""
        if self.environment != "production":
            return
        keys: list[str] = []
        for name, given in (
            ("LINK_SECRET", self.link_secret),
            ("SESSION_SECRET", self.session_secret),
        ):
            secret = given.get_secret_value() if given is not None else ""
            if _is_placeholder(secret) or secret.lower() in _PLACEHOLDER_SECRETS:
                raise ValueError(f"{name} must be set to a real secret in production")
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"{name} must be at least {MIN_SECRET_BYTES} bytes in production")
            keys.append(secret)
        if keys[0] == keys[1]:
            raise ValueError("LINK_SECRET and SESSION_SECRET must differ")
        sasl = self.kafka.sasl_password.get_secret_value() if self.kafka.sasl_password else ""
        for name, value in (("DATABASE_URL", self.database_url), ("KAFKA_SASL_PASSWORD", sasl)):
            if _is_placeholder(value):
                raise ValueError(f"{name} holds a placeholder: set a real secret in production")


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return "change-me" in lowered or "changeme" in lowered or "changethis" in lowered
