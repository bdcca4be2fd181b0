"""Every setting the deployments pass is one the services read; the guide names real ones."""

from __future__ import annotations

import re
from typing import Any

from sto_analytics.config import AnalyticsSettings
from sto_events.config import EventsSettings
from sto_notifications.config import NotificationsSettings
from sto_registrations.config import RegistrationsSettings
from stolive_shared import metrics
from stolive_shared.settings import KafkaSettings, ServiceSettings
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
        "SESSION_SECRET",
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
        "API_DOCS",
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
        metrics.RETENTION_REMOVED: "stolive_retention_removed_total",
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
        "Security settings",
        "What to watch and alert on",
        "The embedded default (`make up`) and production",
    } <= headings
    assert "python -m sto_events.tokens create" in GUIDE
    assert "python -m sto_events.tokens revoke" in GUIDE


def section(heading: str) -> str:
    """The guide's text under ``## heading``, up to the next such heading."""
    start = GUIDE.index(f"\n## {heading}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end != -1 else None]


def test_the_guide_lists_each_security_setting_with_its_real_default() -> None:
    """An operator tunes these from the guide: a default it states must be the code's."""
    security = section("Security settings")
    settings: dict[str, tuple[type[ServiceSettings], int | str | None]] = {
        "SESSION_SECRET": (EventsSettings, None),
        "ORGANISER_SESSION_IDLE_MINUTES": (EventsSettings, 120),
        "ORGANISER_SESSION_MAX_HOURS": (EventsSettings, 12),
        "FRAME_ANCESTORS": (EventsSettings, ""),
        "API_DOCS": (EventsSettings, None),
        "METRICS_PORT": (EventsSettings, 0),
        "SIGNUP_RATE_PER_MINUTE": (RegistrationsSettings, 300),
        "SIGNUP_RATE_BURST": (RegistrationsSettings, 60),
        "SIGNUP_FORM_TOKEN_MIN_AGE_S": (RegistrationsSettings, 2),
        "SIGNUP_FORM_TOKEN_MAX_AGE_S": (RegistrationsSettings, 1800),
        "SIGNUP_API_ORIGINS": (RegistrationsSettings, ""),
        "SUBSCRIBE_RATE_PER_MINUTE": (NotificationsSettings, 10),
        "SUBSCRIBE_RATE_BURST": (NotificationsSettings, 5),
        "LOGIN_RATE_PER_MINUTE": (EventsSettings, 5),
        "LOGIN_RATE_BURST": (EventsSettings, 10),
        "REPEAT_NOTICE_INTERVAL_MINUTES": (RegistrationsSettings, 10),
    }
    rows = [line.split("|") for line in security.splitlines() if line.startswith("| `")]
    for name, (owner, default) in settings.items():
        assert owner.model_fields[name.lower()].default == default, name
        (row,) = [r for r in rows if f"`{name}`" in r[1]]
        if isinstance(default, int):
            # "| `A`, `B` | `1`, `2` |": the default in the same place as the name.
            names = re.findall(r"`(\w+)`", row[1])
            stated = re.findall(r"`([^`]*)`", row[2])
            assert stated[names.index(name)] == str(default), f"the guide's {name} default"
    assert "rate_limits" in security  # kept in PostgreSQL, shared by every replica
    assert "set_real_ip_from" in security  # a further load balancer is trusted, not appended


def test_the_guide_says_what_each_secret_signs_and_what_rotating_it_breaks() -> None:
    rotating = section("Rotating credentials")
    link = next(line for line in rotating.split("\n- ") if line.startswith("**LINK_SECRET**"))
    session = next(line for line in rotating.split("\n- ") if line.startswith("**SESSION_SECRET**"))
    assert "personal links" in link
    assert "logged out" in session
    assert "form tokens" in session
    assert "must differ" in section("Security settings")
