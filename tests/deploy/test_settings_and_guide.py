"""Every setting the deployments pass is one the services read; the guide names real ones."""

from __future__ import annotations

import re
from typing import Any

from sto_analytics.config import AnalyticsSettings
from sto_events.config import EventsSettings
from sto_notifications.config import NotificationsSettings
from sto_registrations.config import RegistrationsSettings
from stolive_shared import metrics
from stolive_shared.settings import KafkaSettings
from tests.deploy.conftest import ROOT
from tests.deploy.kustomize import Manifest

GUIDE = (ROOT / "deploy" / "README.md").read_text()
# Read by the Python runtime itself, not by the settings.
PROCESS_ENV = {"PYTHONUNBUFFERED"}


def setting_names() -> set[str]:
    """Environment variable names pydantic-settings reads for any service."""
    names = {f"KAFKA_{field.upper()}" for field in KafkaSettings.model_fields}
    services = (EventsSettings, RegistrationsSettings, NotificationsSettings, AnalyticsSettings)
    for settings in services:
        names |= {field.upper() for field in settings.model_fields if field != "kafka"}
    return names


def test_compose_passes_only_settings_the_services_read(compose: dict[str, Any]) -> None:
    known = setting_names() | PROCESS_ENV
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name}: {sorted(unknown)} are read by no settings class"


def test_kubernetes_passes_only_settings_the_services_read(
    rendered: dict[str, list[Manifest]],
) -> None:
    known = setting_names() | PROCESS_ENV
    for overlay, manifests in rendered.items():
        (config,) = (m for m in manifests if m["kind"] == "ConfigMap")
        unknown = set(config["data"]) - known
        assert not unknown, f"{overlay} ConfigMap: {sorted(unknown)}"
        for workload in manifests:
            template = workload.get("spec", {}).get("template")
            if template is None:
                continue
            pod = template["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                names = {env["name"] for env in container.get("env", [])}
                assert not names - known, f"{workload['metadata']['name']}: {names - known}"


def test_the_guide_documents_each_production_setting() -> None:
    production = [
        "ENVIRONMENT",
        "LINK_SECRET",
        "DATABASE_URL",
        "KAFKA_ENABLE_IDEMPOTENCE",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
        "SMTP_SECURITY",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "DB_POOL_MIN_SIZE",
        "DB_POOL_MAX_SIZE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "FORWARDED_ALLOW_IPS",
        "MAX_BODY_BYTES",
        "METRICS_PORT",
    ]
    assert set(production) <= setting_names()
    for name in production:
        assert f"`{name}`" in GUIDE, f"deploy/README.md does not explain {name}"


def test_the_guide_names_the_series_every_service_exports() -> None:
    exported = {
        metrics.REQUEST_SECONDS: "stolive_http_request_duration_seconds",
        metrics.OUTBOX_BACKLOG: "stolive_outbox_backlog",
        metrics.OUTBOX_PUBLISHED: "stolive_outbox_published_total",
        metrics.OUTBOX_REPUBLISH_ROUNDS: "stolive_outbox_republish_rounds_total",
        metrics.CONSUMER_LAG: "stolive_consumer_lag",
        metrics.CONSUMER_MESSAGES: "stolive_consumer_messages_total",
        metrics.EMAILS_SENT: "stolive_emails_sent_total",
        metrics.EMAILS_FAILED: "stolive_emails_failed_total",
        metrics.LIVE_VIEWERS: "stolive_live_viewers",
        metrics.WORKER_LIVE_VIEWERS: "stolive_worker_live_viewers",
    }
    for metric, series in exported.items():
        samples = {s.name for family in metric.collect() for s in family.samples}
        family_names = {family.name for family in metric.collect()}
        assert series in samples | family_names | {f"{n}_total" for n in family_names}
        assert f"`{series}`" in GUIDE, f"deploy/README.md does not say when {series} alerts"


def test_the_guide_covers_the_operations_an_operator_needs() -> None:
    headings = set(re.findall(r"^## (.+)$", GUIDE, re.M))
    assert {
        "Sizing",
        "Scaling each service",
        "Backup and restore of PostgreSQL",
        "Replaying a topic to rebuild analytics",
        "Rotating credentials",
        "What to watch and alert on",
        "The embedded default (`make up`) and production",
    } <= headings
    assert "python -m sto_events.tokens create" in GUIDE
    assert "python -m sto_events.tokens revoke" in GUIDE
