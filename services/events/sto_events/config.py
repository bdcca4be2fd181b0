"""The events service's settings: the shared ones with this service's defaults."""

from __future__ import annotations

from stolive_shared.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    service_name: str = "events"
    db_schema: str = "events"
    http_port: int = 8101
    # Organiser login attempts per client address: a burst, then this many a minute (0: off).
    login_rate_per_minute: int = 5
    login_rate_burst: int = 10
    # The e-mailed sign-in links go out through the notifications service's internal API.
    notifications_api_url: str = "http://127.0.0.1:8103"
    # The event hub's counts: seats and check-ins from registrations, viewers from analytics.
    registrations_api_url: str = "http://127.0.0.1:8102"
    analytics_api_url: str = "http://127.0.0.1:8104"
    # Beacons: at most this many per request, and at most one per viewer per this many seconds.
    beacon_max_batch: int = 100
    beacon_min_interval_s: float = 5.0
    # The beacon producer waits this long to fill a batch (the embedded broker's fetch cost
    # grows with the number of stored batches: ~100 ms batches keep it flat).
    beacon_linger_ms: int = 75
    # No acknowledgement for this long while beacons wait: the broker counts as unavailable.
    beacon_ack_timeout_s: float = 5.0
    # At most this many accepted beacons not yet acknowledged by Kafka; beyond it, 503.
    beacon_max_pending: int = 20_000
    # How often the beacon endpoint reloads event statuses from PostgreSQL.
    status_refresh_s: float = 1.0
    # How often the watch page sends a heartbeat (the player may be told otherwise by ?hartslag=).
    heartbeat_s: int = 30
