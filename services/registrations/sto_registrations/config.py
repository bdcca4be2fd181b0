"""The registrations service's settings: the shared ones with this service's defaults."""

from __future__ import annotations

from stolive_shared.settings import ServiceSettings


class RegistrationsSettings(ServiceSettings):
    service_name: str = "registrations"
    db_schema: str = "registrations"
    http_port: int = 8102
    # Where the events service answers, for the region list and organiser credentials.
    events_api_url: str = "http://127.0.0.1:8101"
    # How old this process's copy of the school sites (for the sign-up form) may get before it
    # is fetched again from the events service, in the background.
    school_list_refresh_s: float = 300.0
    # Where notifications and analytics answer their internal APIs: a person's export
    # gathers what they hold (never through the public address). Both empty: the export is
    # this service's alone (a test of this service by itself; never in a deployment).
    notifications_api_url: str = "http://127.0.0.1:8103"
    analytics_api_url: str = "http://127.0.0.1:8104"
    # Public sign-ups per client address: a burst, then this many a minute (0: no limit).
    # Generous on purpose: a whole school signs up from behind one address; a flood of
    # hundreds a second from one address is what it stops.
    signup_rate_per_minute: int = 300
    signup_rate_burst: int = 60
    # The JSON API's form tokens: usable this long after they were fetched, until expired.
    signup_form_token_min_age_s: float = 2.0
    signup_form_token_max_age_s: float = 1800.0
    # Partner sites whose pages may call the sign-up API from the browser (CORS), comma
    # separated, e.g. "https://www.techniekpactdrenthe.nl"; empty: none.
    signup_api_origins: str = ""
    # An address signed up again is told so ("Je was al aangemeld") at most once in this time.
    repeat_notice_interval_minutes: float = 10.0
    # Sign-up batches committing at once (group commit, see service.SignUpBatcher).
    signup_batches_in_flight: int = 4
