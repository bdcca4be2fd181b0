"""Production refuses placeholder secrets; development accepts the defaults."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from sto_notifications.config import NotificationsSettings
from stolive_shared.settings import KafkaSettings, ServiceSettings

REAL_SECRET = SecretStr("k3Jd9-real-secret-from-the-vault")


def test_development_runs_on_the_defaults() -> None:
    ServiceSettings().check_production_ready()


def test_production_refuses_the_default_link_secret() -> None:
    with pytest.raises(ValueError, match="LINK_SECRET"):
        ServiceSettings(environment="production").check_production_ready()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"database_url": "postgresql://sto:change-me@db/stolive"}, "DATABASE_URL"),
        ({"kafka": KafkaSettings(sasl_password=SecretStr("CHANGEME"))}, "KAFKA_SASL_PASSWORD"),
    ],
)
def test_production_refuses_placeholders(changes: dict[str, object], named: str) -> None:
    settings = ServiceSettings(environment="production", link_secret=REAL_SECRET, **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=named):
        settings.check_production_ready()


def test_production_accepts_real_secrets() -> None:
    ServiceSettings(environment="production", link_secret=REAL_SECRET).check_production_ready()


@pytest.mark.parametrize("placeholder", ["change-me", "CHANGEME", "changethis", "secret"])
def test_production_notifications_refuse_a_placeholder_smtp_password(placeholder: str) -> None:
    settings = NotificationsSettings(
        environment="production",
        link_secret=REAL_SECRET,
        smtp_username="stolive",
        smtp_password=SecretStr(placeholder),
    )
    with pytest.raises(ValueError, match="SMTP_PASSWORD"):
        settings.check_production_ready()


def test_production_notifications_refuse_a_username_without_a_password() -> None:
    settings = NotificationsSettings(
        environment="production", link_secret=REAL_SECRET, smtp_username="stolive"
    )
    with pytest.raises(ValueError, match="SMTP_PASSWORD"):
        settings.check_production_ready()


def test_production_notifications_accept_a_real_password_or_an_open_relay() -> None:
    NotificationsSettings(
        environment="production",
        link_secret=REAL_SECRET,
        smtp_username="stolive",
        smtp_password=SecretStr("Vx81-real-smtp-password"),
    ).check_production_ready()
    # Mailpit, or a relay that trusts the network: no credentials at all (compose's default).
    NotificationsSettings(
        environment="production", link_secret=REAL_SECRET, smtp_username="", smtp_password=None
    ).check_production_ready()
    # Outside production the development defaults stand.
    NotificationsSettings(
        smtp_username="dev", smtp_password=SecretStr("changeme")
    ).check_production_ready()
