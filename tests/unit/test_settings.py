"""Production refuses missing, placeholder, short and shared secrets; outside production a
process without secrets uses its data folder's own random ones, never a constant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sto_notifications.config import NotificationsSettings
from stolive_shared.settings import KafkaSettings, ServiceSettings

REAL_SECRET = SecretStr("k3Jd9-real-secret-from-the-vault-0123456789")
OTHER_SECRET = SecretStr("Qm7t2-another-one-from-the-vault-9876543210")
PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "link_secret": REAL_SECRET,
    "session_secret": OTHER_SECRET,
}


def test_development_runs_without_secrets_given(tmp_path: Path) -> None:
    ServiceSettings(data_dir=tmp_path).check_production_ready()


def test_without_secrets_a_data_folder_makes_its_own_random_keys_and_keeps_them(
    tmp_path: Path,
) -> None:
    first = ServiceSettings(data_dir=tmp_path / "one")
    again = ServiceSettings(data_dir=tmp_path / "one")
    other = ServiceSettings(data_dir=tmp_path / "two")
    assert first.link_key() == again.link_key()
    assert first.session_key() == again.session_key()
    assert first.link_key() != first.session_key()
    assert first.link_key() != other.link_key()
    assert len(first.link_key()) >= 32
    assert (tmp_path / "one" / "secrets" / "link-secret").stat().st_mode & 0o077 == 0


def test_a_given_secret_is_used_as_given(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path, link_secret=REAL_SECRET)
    assert settings.link_key() == REAL_SECRET.get_secret_value()
    assert not (tmp_path / "secrets" / "link-secret").exists()


@pytest.mark.parametrize("missing", ["link_secret", "session_secret"])
def test_production_refuses_a_missing_secret(missing: str) -> None:
    settings = ServiceSettings(**{**PRODUCTION, missing: None})
    with pytest.raises(ValueError, match=missing.upper()):
        settings.check_production_ready()
    with pytest.raises(ValueError, match=missing.upper()):
        settings.link_key() if missing == "link_secret" else settings.session_key()


@pytest.mark.parametrize(
    "weak",
    [
        "changeme",
        "change-me-please-0123456789abcdefghij",
        "secret",
        "tooshort-31-bytes-0123456789abc",
    ],
)
def test_production_refuses_a_placeholder_or_short_secret(weak: str) -> None:
    for name in ("link_secret", "session_secret"):
        settings = ServiceSettings(**{**PRODUCTION, name: SecretStr(weak)})
        with pytest.raises(ValueError, match=name.upper()):
            settings.check_production_ready()


def test_production_refuses_one_secret_for_links_and_sessions() -> None:
    settings = ServiceSettings(**{**PRODUCTION, "session_secret": REAL_SECRET})
    with pytest.raises(ValueError, match="differ"):
        settings.check_production_ready()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"database_url": "postgresql://sto:change-me@db/stolive"}, "DATABASE_URL"),
        ({"kafka": KafkaSettings(sasl_password=SecretStr("CHANGEME"))}, "KAFKA_SASL_PASSWORD"),
    ],
)
def test_production_refuses_placeholders(changes: dict[str, object], named: str) -> None:
    settings = ServiceSettings(**PRODUCTION, **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=named):
        settings.check_production_ready()


def test_production_accepts_real_secrets() -> None:
    ServiceSettings(**PRODUCTION).check_production_ready()


@pytest.mark.parametrize("placeholder", ["change-me", "CHANGEME", "changethis", "secret"])
def test_production_notifications_refuse_a_placeholder_smtp_password(placeholder: str) -> None:
    settings = NotificationsSettings(
        **PRODUCTION,
        smtp_username="stolive",
        smtp_password=SecretStr(placeholder),
    )
    with pytest.raises(ValueError, match="SMTP_PASSWORD"):
        settings.check_production_ready()


def test_production_notifications_refuse_a_username_without_a_password() -> None:
    settings = NotificationsSettings(**PRODUCTION, smtp_username="stolive")
    with pytest.raises(ValueError, match="SMTP_PASSWORD"):
        settings.check_production_ready()


def test_production_notifications_accept_a_real_password_or_an_open_relay() -> None:
    NotificationsSettings(
        **PRODUCTION,
        smtp_username="stolive",
        smtp_password=SecretStr("Vx81-real-smtp-password"),
    ).check_production_ready()
    # Mailpit, or a relay that trusts the network: no credentials at all (compose's default).
    NotificationsSettings(
        **PRODUCTION, smtp_username="", smtp_password=None
    ).check_production_ready()
    # Outside production the development defaults stand.
    NotificationsSettings(
        smtp_username="dev", smtp_password=SecretStr("changeme")
    ).check_production_ready()
