"""The notifications service's settings: the shared ones plus SMTP."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from stolive_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    db_schema: str = "notifications"
    http_port: int = 8103

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = 15.0
    smtp_connections: int = 4
    mail_from: str = "STO Live <noreply@sterktechniekonderwijs.nl>"
    # At most this many emails per second over all connections (0: no limit).
    mail_rate_per_s: float = 0.0
    # Bounces (sending.py, deploy/mail.md): this many hard bounces (a 5xx) within the window
    # suppress an address; soft ones (still 4xx after every retry) only this many.
    hard_bounce_limit: int = 1
    soft_bounce_limit: int = 3
    bounce_window_days: int = 30
    # DKIM-sign outgoing mail with this RSA key (PEM) as <selector>._domainkey.<domain>; the
    # domain defaults to MAIL_FROM's. No key: unsigned (see deploy/mail.md).
    dkim_private_key_path: str | None = None
    dkim_selector: str = "stolive"
    dkim_domain: str | None = None
    max_attempts: int = 8

    # Where the events service answers: organiser checks and upcoming events for mailings.
    events_api_url: str = "http://127.0.0.1:8101"
    # Mailing recipients claimed per round. Claimed rows not yet handed to SMTP are never
    # ambiguous after a crash (they were not sent), so this trades only claim round trips.
    mailing_claim_batch: int = 250
    # Rows claimed by a sender whose PostgreSQL session ended go back to the queue this long
    # after another sender first sees them: longer than that sender may still be finishing a
    # send (SMTP_TIMEOUT_S after it noticed, which takes at most 3 s). See sending.py.
    orphan_grace_s: float = 20.0
    # How often the reminder and mailing schedulers look for due work when nothing wakes them.
    scheduler_poll_s: float = 5.0
    # The public subscribe form refuses posts made faster than a person can type.
    subscribe_min_fill_s: float = 2.0
    # Newsletter subscriptions per client address: a burst, then this many a minute (0: off).
    subscribe_rate_per_minute: int = 10
    subscribe_rate_burst: int = 5

    def check_production_ready(self) -> None:
        """The shared checks, and an SMTP password that is a real one where one is used."""
        super().check_production_ready()
        if self.environment != "production":
            return
        password = self.smtp_password.get_secret_value() if self.smtp_password else ""
        if self.smtp_username and not password:
            raise ValueError("SMTP_USERNAME is set without SMTP_PASSWORD: set the real password")
        if password and _is_placeholder(password):
            raise ValueError("SMTP_PASSWORD holds a placeholder: set a real secret in production")


_PLACEHOLDERS = ("change-me", "changeme", "changethis", "change_me")


def _is_placeholder(secret: str) -> bool:
    lowered = secret.strip().lower()
    return lowered in ("", "secret", "password") or any(p in lowered for p in _PLACEHOLDERS)
