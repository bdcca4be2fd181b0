"""The statements' facts are settings with sensible defaults, and every page template can use
the shared footer (its own folder first, then ``stolive_shared/templates``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from sto_analytics.config import AnalyticsSettings
from sto_events.config import EventsSettings
from sto_notifications.config import NotificationsSettings
from sto_registrations.config import RegistrationsSettings
from stolive_shared.settings import ServiceSettings
from stolive_shared.templating import StatementLinks, long_date, make_templates, statement_links
from stolive_shared.urls import PublicUrls


def test_the_statements_facts_have_sensible_defaults() -> None:
    settings = ServiceSettings()
    assert settings.privacy_controller
    assert "@" in settings.privacy_contact_email
    assert "@" in settings.accessibility_contact_email
    assert settings.privacy_statement_version == "2026-12-02"
    assert settings.registration_retention_days == 180
    assert settings.certificate_retention_days == 1095
    assert settings.unconfirmed_subscription_days == 7
    assert settings.mail_content_retention_days == 90


@pytest.mark.parametrize(
    "service", [EventsSettings, RegistrationsSettings, NotificationsSettings, AnalyticsSettings]
)
def test_every_service_reads_them_from_its_environment(
    service: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVACY_STATEMENT_VERSION", "2031-04-05")
    monkeypatch.setenv("REGISTRATION_RETENTION_DAYS", "123")
    settings = service()
    assert settings.privacy_statement_version == "2031-04-05"
    assert settings.registration_retention_days == 123


@pytest.mark.parametrize("version", ["2026-13-01", "2 december 2026", "20261202", ""])
def test_a_version_is_a_real_date_written_as_yyyy_mm_dd(version: str) -> None:
    with pytest.raises(ValidationError, match="privacy_statement_version"):
        ServiceSettings(privacy_statement_version=version)


def test_a_retention_period_is_at_least_a_day() -> None:
    with pytest.raises(ValidationError, match="registration_retention_days"):
        ServiceSettings(registration_retention_days=0)


def test_the_statements_are_public_addresses_of_the_events_service() -> None:
    urls = PublicUrls("https://live.example.nl/")
    assert urls.privacy_statement() == "https://live.example.nl/events/privacyverklaring"
    assert urls.accessibility_statement() == (
        "https://live.example.nl/events/toegankelijkheidsverklaring"
    )


def test_pages_get_the_statement_links_from_the_settings_of_their_app() -> None:
    settings = ServiceSettings(
        public_base_url="https://live.example.nl", privacy_statement_version="2031-04-05"
    )
    parts = SimpleNamespace(runtime=SimpleNamespace(settings=settings))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(parts=parts)))
    assert statement_links(request)["statements"] == StatementLinks(  # type: ignore[arg-type]
        privacy="https://live.example.nl/events/privacyverklaring",
        accessibility="https://live.example.nl/events/toegankelijkheidsverklaring",
        privacy_version="2031-04-05",
    )
    assert long_date("2031-04-05") == "5 april 2031"


def test_a_service_template_includes_the_shared_footer_and_may_replace_it(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text('<main>inhoud</main>{% include "_footer.html" %}')
    links = StatementLinks("https://x.nl/events/privacyverklaring", "https://x.nl/t", "2026-12-02")
    page = make_templates(tmp_path).get_template("page.html").render(statements=links)
    assert '<a href="https://x.nl/events/privacyverklaring" target="_top">Privacyverklaring' in page
    assert '<a href="https://x.nl/t" target="_top">Toegankelijkheidsverklaring' in page

    # The service's own folder comes first: a template of its own by that name wins.
    (tmp_path / "_footer.html").write_text("<footer>eigen voettekst</footer>")
    page = make_templates(tmp_path).get_template("page.html").render(statements=links)
    assert "eigen voettekst" in page
    assert "Privacyverklaring" not in page


def test_every_page_template_base_includes_the_footer() -> None:
    root = Path(__file__).resolve().parents[2] / "services"
    bases = [
        root / "events/sto_events/templates/base.html",
        root / "registrations/sto_registrations/templates/base.html",
        root / "notifications/sto_notifications/templates/pages/base.html",
        root / "analytics/sto_analytics/templates/base.html",
    ]
    for base in bases:
        text = base.read_text()
        assert '{% include "_footer.html" %}' in text, base
        assert '{% include "_footer.css" %}' in text, base
