"""How the registrations service is put together: the one place its parts are built from the
runtime, and how the shared runtime runs it. The HTTP app and the Kafka consumer receive
these parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sto_registrations.adapters.people import OtherServices
from sto_registrations.api.abuse import FormTokens, SignUpGuard, SignUpLimit
from sto_registrations.app import create_app
from sto_registrations.config import RegistrationsSettings
from sto_registrations.consumers import create_consumers, create_workers
from sto_registrations.service import RegistrationsService
from stolive_shared.events_client import EventsClient, RegionDirectory, SchoolDirectory
from stolive_shared.internal import InternalClient
from stolive_shared.links import PersonalLinks
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime, ServiceDefinition
from stolive_shared.urls import PublicUrls


@dataclass(frozen=True)
class Registrations:
    """Everything one registrations process runs on."""

    runtime: Runtime[RegistrationsSettings]
    service: RegistrationsService
    regions: RegionDirectory
    schools: SchoolDirectory
    sign_up_limit: SignUpLimit
    sign_up_guard: SignUpGuard


def bootstrap(runtime: Runtime[RegistrationsSettings]) -> Registrations:
    settings = runtime.settings
    sign_up_limit = SignUpLimit(
        SharedLimits(runtime.pool),
        Limit("sign-up", settings.signup_rate_per_minute, settings.signup_rate_burst),
    )
    return Registrations(
        runtime=runtime,
        service=RegistrationsService(
            pool=runtime.pool,
            schema=settings.db_schema,
            links=PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url)),
            max_in_flight=settings.signup_batches_in_flight,
            repeat_notice_interval=timedelta(minutes=settings.repeat_notice_interval_minutes),
            privacy_version=settings.privacy_statement_version,
            others=OtherServices(
                InternalClient(settings.notifications_api_url, settings.link_key()),
                InternalClient(settings.analytics_api_url, settings.link_key()),
            )
            if settings.notifications_api_url and settings.analytics_api_url
            else None,
        ),
        regions=RegionDirectory(EventsClient(settings.events_api_url)),
        schools=SchoolDirectory(
            EventsClient(settings.events_api_url), refresh_s=settings.school_list_refresh_s
        ),
        sign_up_limit=sign_up_limit,
        sign_up_guard=SignUpGuard(
            sign_up_limit,
            FormTokens.from_secret(
                settings.session_key(),
                settings.signup_form_token_min_age_s,
                settings.signup_form_token_max_age_s,
            ),
        ),
    )


DEFINITION: ServiceDefinition[RegistrationsSettings, Registrations] = ServiceDefinition(
    name="registrations",
    settings_factory=RegistrationsSettings,
    migrations=Path(__file__).parent / "migrations",
    bootstrap=bootstrap,
    create_app=create_app,
    create_consumers=create_consumers,
    create_workers=create_workers,
)
