"""How the events service is put together: the one place its parts are built from the runtime
(pool, settings), and how the shared runtime runs it. The HTTP app receives these parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sto_events.adapters.beacons import BeaconPublisher, EventStatusCache
from sto_events.adapters.counts import EventCounts
from sto_events.api.beacons import BeaconEndpoint
from sto_events.app import create_app
from sto_events.config import EventsSettings
from sto_events.domain import ViewerThrottle
from sto_events.repository.postgres import postgres_store
from sto_events.service import EventsService
from stolive_shared.internal import InternalClient
from stolive_shared.links import PersonalLinks
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime, ServiceDefinition
from stolive_shared.urls import PublicUrls


@dataclass(frozen=True)
class Events:
    """Everything one events process runs on."""

    runtime: Runtime[EventsSettings]
    service: EventsService
    statuses: EventStatusCache
    throttle: ViewerThrottle
    publisher: BeaconPublisher
    beacons: BeaconEndpoint
    links: PersonalLinks
    urls: PublicUrls
    limits: SharedLimits
    login_limit: Limit
    notifications: InternalClient  # mails the organisers' sign-in links
    counts: EventCounts  # the event hub's and list's counts, from their owners


def bootstrap(runtime: Runtime[EventsSettings]) -> Events:
    settings = runtime.settings
    service = EventsService(postgres_store(runtime.pool, settings.db_schema))
    statuses = EventStatusCache(service.public_statuses, settings.status_refresh_s)
    service.listeners.append(statuses.note)
    throttle = ViewerThrottle(settings.beacon_min_interval_s)
    publisher = BeaconPublisher(
        settings.kafka,
        linger_ms=settings.beacon_linger_ms,
        ack_timeout_s=settings.beacon_ack_timeout_s,
        max_pending=settings.beacon_max_pending,
    )
    urls = PublicUrls(settings.public_base_url)
    links = PersonalLinks(settings.link_key(), urls)
    return Events(
        runtime=runtime,
        service=service,
        statuses=statuses,
        throttle=throttle,
        publisher=publisher,
        beacons=BeaconEndpoint(statuses, throttle, publisher, settings.beacon_max_batch, links),
        links=links,
        urls=urls,
        limits=SharedLimits(runtime.pool),
        login_limit=Limit(
            "organiser-login", settings.login_rate_per_minute, settings.login_rate_burst
        ),
        notifications=InternalClient(settings.notifications_api_url, settings.link_key()),
        counts=EventCounts(
            InternalClient(settings.registrations_api_url, settings.link_key(), timeout_s=2),
            InternalClient(settings.analytics_api_url, settings.link_key(), timeout_s=2),
        ),
    )


DEFINITION: ServiceDefinition[EventsSettings, Events] = ServiceDefinition(
    name="events",
    settings_factory=EventsSettings,
    migrations=Path(__file__).parent / "migrations",
    bootstrap=bootstrap,
    create_app=create_app,
)
