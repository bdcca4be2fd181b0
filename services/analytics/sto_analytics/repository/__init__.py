"""SQL for the analytics read model in PostgreSQL ($1 parameters, domain objects out), one
module per job; callers write ``from sto_analytics import repository`` and
``repository.live_now(conn, ...)``. Opens no transactions: the use cases in ``service`` do.

Every write is idempotent: sets (``ON CONFLICT DO NOTHING``), maxima (``GREATEST``), the
highest revision, or "once" (``finalised_at IS NULL``), so at-least-once replays and two
workers during a rebalance leave the same rows.

- ``registrations``: the tallies and registrants per event, and erasure of a person's name;
- ``viewing``: watched minutes, live counts and per-minute maxima (the beacon batches);
- ``figures``: views, watch time and viewers per group and per registrant, computed now;
- ``events``: the events followed, and the ended one due for finalisation;
- ``finalisation``: figures per broadcast and series, attendance and certificates.
"""

from __future__ import annotations

from sto_analytics.repository.events import (
    TrackedEvent,
    claim_event_to_finalise,
    claim_event_to_refresh,
    mark_finalised,
    mark_refreshed,
    recent_events,
    save_event,
    tracked_event,
)
from sto_analytics.repository.figures import (
    GroupFigures,
    RegistrantWatching,
    registrant_watching,
    watch_figures,
    watching_by,
)
from sto_analytics.repository.finalisation import (
    AttendanceRow,
    BroadcastFigures,
    Certificate,
    attendees,
    broadcast_figures,
    certificate,
    certificate_by_code,
    certificates_of,
    expire_certificates,
    issue_certificates,
    record_replay_attendance,
    save_attendance,
    save_broadcast_figures,
    series_broadcasts,
    series_codes,
    withdraw_certificates,
)
from sto_analytics.repository.people import person_data
from sto_analytics.repository.registrations import (
    RegistrantRow,
    anonymise_names,
    erase_names,
    registration_tally,
    save_registrants,
    save_registration_tallies,
)
from sto_analytics.repository.viewing import (
    LiveNow,
    LiveRow,
    add_recording_minutes,
    add_viewer_minutes,
    live_minutes,
    live_now,
    mark_figures_stale,
    raise_live_minutes,
    save_live_counts,
    total_live_viewers,
)

__all__ = [
    "AttendanceRow",
    "BroadcastFigures",
    "Certificate",
    "GroupFigures",
    "LiveNow",
    "LiveRow",
    "RegistrantRow",
    "RegistrantWatching",
    "TrackedEvent",
    "add_recording_minutes",
    "add_viewer_minutes",
    "anonymise_names",
    "attendees",
    "broadcast_figures",
    "certificate",
    "certificate_by_code",
    "certificates_of",
    "claim_event_to_finalise",
    "claim_event_to_refresh",
    "erase_names",
    "expire_certificates",
    "issue_certificates",
    "live_minutes",
    "live_now",
    "mark_figures_stale",
    "mark_finalised",
    "mark_refreshed",
    "person_data",
    "raise_live_minutes",
    "recent_events",
    "record_replay_attendance",
    "registrant_watching",
    "registration_tally",
    "save_attendance",
    "save_broadcast_figures",
    "save_event",
    "save_live_counts",
    "save_registrants",
    "save_registration_tallies",
    "series_broadcasts",
    "series_codes",
    "total_live_viewers",
    "tracked_event",
    "watch_figures",
    "watching_by",
    "withdraw_certificates",
]
