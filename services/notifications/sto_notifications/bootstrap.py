"""How the notifications service is put together: the one place its parts are built from the
runtime, and how the shared runtime runs it. The HTTP app, the Kafka consumers and the
background workers (scheduler, senders) all receive these parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sto_notifications.adapters.smtp import SmtpPool
from sto_notifications.app import create_app
from sto_notifications.config import NotificationsSettings
from sto_notifications.consumers import create_consumers, create_workers
from sto_notifications.service import EmailHistory, MailingService, NotificationsService
from sto_notifications.service.sign_in import OrganiserSignIn
from stolive_shared.events_client import EventsClient, RegionDirectory
from stolive_shared.links import PersonalLinks
from stolive_shared.metrics import StuckSending
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime, ServiceDefinition
from stolive_shared.urls import PublicUrls


@dataclass(frozen=True)
class Notifications:
    """Everything one notifications process runs on."""

    runtime: Runtime[NotificationsSettings]
    reactions: NotificationsService
    mailings: MailingService
    history: EmailHistory
    sign_in: OrganiserSignIn
    regions: RegionDirectory  # the STO regions by name, for the mailing form
    smtp: SmtpPool
    limits: SharedLimits
    subscribe_limit: Limit


def bootstrap(runtime: Runtime[NotificationsSettings]) -> Notifications:
    settings = runtime.settings
    urls = PublicUrls(settings.public_base_url)
    reactions = NotificationsService(
        schema=settings.db_schema,
        links=PersonalLinks(settings.link_key(), urls),
        mail_from=settings.mail_from,
        privacy_version=settings.privacy_statement_version,
    )
    return Notifications(
        runtime=runtime,
        reactions=reactions,
        mailings=MailingService(runtime.pool, settings),
        history=EmailHistory(runtime.pool),
        sign_in=OrganiserSignIn(runtime.pool, reactions.emails, urls),
        regions=RegionDirectory(EventsClient(settings.events_api_url)),
        smtp=SmtpPool(settings),
        limits=SharedLimits(runtime.pool),
        subscribe_limit=Limit(
            "newsletter", settings.subscribe_rate_per_minute, settings.subscribe_rate_burst
        ),
    )


DEFINITION: ServiceDefinition[NotificationsSettings, Notifications] = ServiceDefinition(
    name="notifications",
    settings_factory=NotificationsSettings,
    migrations=Path(__file__).parent / "migrations",
    bootstrap=bootstrap,
    create_app=create_app,
    create_consumers=create_consumers,
    create_workers=create_workers,
    # E-mails left in ``sending`` by a sender that died: an alert's figure.
    metrics_probes=(StuckSending(),),
)
