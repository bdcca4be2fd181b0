"""The analytics service's settings: the shared ones plus the Faust worker's and the rules'."""

from __future__ import annotations

from stolive_shared.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    service_name: str = "analytics"
    db_schema: str = "analytics"
    http_port: int = 8104
    # Where the events service answers: the school sites' names for the figures per school.
    events_api_url: str = "http://127.0.0.1:8101"
    # How old the API's copy of the school sites may get before it is fetched again, in the
    # background.
    school_list_refresh_s: float = 300.0
    # Faust's own web server is off; this names the worker in logs and metrics.
    worker_name: str = "analytics-1"
    faust_data_dir: str = ".stolive/faust"
    # How often the worker refreshes its live-viewer and lag gauges.
    metrics_interval_s: float = 5.0
    # How often the workers write changed registration figures to the read model.
    flush_interval_s: float = 0.5

    # A viewer counts as live while their last beacon is younger than this: two missed 30 s
    # heartbeats and a closed laptop stops counting, without a ``leave``.
    live_timeout_s: float = 75.0
    # How often live viewers who stopped beaconing are expired and the count rewritten.
    expiry_interval_s: float = 1.0
    # Beacons are handled in batches: at most this many, or what arrived within this time.
    beacon_batch_size: int = 2000
    beacon_batch_within_s: float = 0.25
    # Attendance (``domain``): live, at least this many minutes live or checked in; replay,
    # at least this many distinct minutes of the recording, watched within
    # ``replay_attendance_days`` after the end.
    attendance_min_minutes: float = 10.0
    replay_attendance_days: float = 30.0
    # The public verify page of certificates: lookups per client address.
    certificate_check_rate_per_minute: int = 20
    certificate_check_rate_burst: int = 10
    # Figures are finalised this long after an event ended, so the last beacons (up to one
    # live timeout late) are in; then attendance is published once. The same timer brings
    # finalised events that saw replay viewing since up to date.
    finalise_grace_s: float = 90.0
    finalise_check_interval_s: float = 5.0
    # The API pushes the live count over Server-Sent Events at this interval while it changes.
    live_feed_interval_s: float = 0.5
