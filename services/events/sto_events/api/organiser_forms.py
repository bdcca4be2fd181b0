"""The organiser's event forms: reading them into the API's request schemas, and turning what
those schemas or the rules refuse into Dutch messages beside the fields at fault.

Browsers send every field as text and an unticked box not at all; an Amsterdam time that
occurs twice (the autumn clock change) comes back with the offset the organiser picked.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from sto_events.api.schemas import (
    Cancellation,
    Ending,
    EventCreate,
    EventUpdate,
    ReplayIn,
    Reschedule,
)
from sto_events.domain import Event, EventRuleViolation, InvalidLocalTime
from stolive_shared.templating import local_time

OFFSETS = {
    "+02:00": "zomertijd (UTC+2, de eerste keer)",
    "+01:00": "wintertijd (UTC+1, de tweede keer)",
}
_PYDANTIC_NL = {
    "missing": "Vul dit veld in.",
    "string_too_short": "Dit is te kort.",
    "string_too_long": "Dit is te lang.",
    "url_parsing": "Dit is geen geldig webadres (begin met https://).",
    "url_scheme": "Dit is geen geldig webadres (begin met https://).",
    "int_parsing": "Vul een heel getal in.",
    "float_parsing": "Vul getallen in, gescheiden door komma's.",
    "datetime_from_date_parsing": "Vul een datum en tijd in.",
    "datetime_parsing": "Vul een datum en tijd in.",
    "greater_than_equal": "Dit getal is te klein.",
    "less_than_equal": "Dit getal is te groot.",
    "literal_error": "Kies een van de mogelijkheden.",
    "too_long": "Dit zijn er te veel.",
}


# -- reading a form ----------------------------------------------------------------------------


def _moment(form: FormData, name: str) -> str | None:
    """A datetime-local value, with the offset the organiser chose for an autumn overlap."""
    value = str(form.get(name, "")).strip()
    if not value:
        return None
    offset = str(form.get(f"{name}_offset", ""))
    return value + offset if offset in OFFSETS else value


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name, "")).strip()
    return value or None


def _reminders(form: FormData) -> list[str]:
    raw = str(form.get("reminder_offsets_hours", "")).replace(";", ",")
    return [part.strip().replace(",", ".") for part in raw.split(",") if part.strip()]


def _details(form: FormData) -> dict[str, Any]:
    """The fields the "new event" form and the event page's details form share."""
    return {
        "title": str(form.get("title", "")).strip(),
        "description": str(form.get("description", "")).strip(),
        "venue": _text(form, "venue"),
        "stream_url": _text(form, "stream_url"),
        "captions_url": _text(form, "captions_url"),
        "region_codes": [str(code) for code in form.getlist("region_codes")],
        "capacity": _text(form, "capacity"),
        "waitlist_enabled": form.get("waitlist_enabled") == "ja",
        "registration_opens_at": _moment(form, "registration_opens_at"),
        "registration_closes_at": _moment(form, "registration_closes_at"),
        "reminder_offsets_hours": _reminders(form),
    }


def new_event(form: FormData) -> EventCreate:
    """The "new event" form as the API's create request; raises ``ValidationError``."""
    data = _details(form)
    data["kind"] = form.get("kind") or None
    data["starts_at"] = _moment(form, "starts_at")
    data["ends_at"] = _moment(form, "ends_at")
    if form.get("kind") == "webinar":
        data["series_code"] = _text(form, "series_code")
        data["series_number"] = _text(form, "series_number")
    return EventCreate.model_validate({k: v for k, v in data.items() if v is not None})


def event_update(form: FormData) -> EventUpdate:
    """The event page's details form as the API's update request; raises ``ValidationError``."""
    fields = _details(form)
    fields["replay_url"] = _text(form, "replay_url")
    # Unticked boxes send nothing; every other field the form lacks stays as it is.
    sent = set(form.keys()) | {"waitlist_enabled", "region_codes"}
    return EventUpdate.model_validate({k: v for k, v in fields.items() if k in sent})


def ending(form: FormData) -> Ending:
    return Ending.model_validate({"replay_url": _text(form, "replay_url")})


def replay(form: FormData) -> ReplayIn:
    """The replay form: its captions field, prefilled with the captions as they are, empty
    means none; a form without that field leaves them as they are."""
    fields = {"replay_url": _text(form, "replay_url")}
    if "captions_url" in form:
        fields["captions_url"] = _text(form, "captions_url")
    return ReplayIn.model_validate(fields)


def cancellation(form: FormData) -> Cancellation:
    return Cancellation.model_validate({"reason": str(form.get("reason", "")).strip()})


def reschedule(form: FormData) -> Reschedule:
    return Reschedule.model_validate(
        {"starts_at": _moment(form, "starts_at"), "ends_at": _moment(form, "ends_at")}
    )


# -- showing it again ----------------------------------------------------------------------------


def problems(exc: ValidationError) -> dict[str, str]:
    """Field name -> a Dutch message, the first problem of each field."""
    found: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        found.setdefault(field, _PYDANTIC_NL.get(error["type"], "Deze waarde klopt niet."))
    return found


def rule_problem(exc: EventRuleViolation) -> tuple[dict[str, str], set[str]]:
    """The refused field's message, and the time fields that should ask for their offset."""
    field = exc.field or "form"
    ask_offset = {field} if isinstance(exc, InvalidLocalTime) and "twee keer" in str(exc) else set()
    return {field: sentence(exc)}, ask_offset


def sentence(exc: Exception) -> str:
    """An error's message as a sentence: a capital first and a full stop last."""
    text = str(exc)
    return text[:1].upper() + text[1:] + "."


def echo(form: FormData) -> dict[str, Any]:
    """What was sent, to fill the form in again."""
    echoed: dict[str, Any] = {key: str(value) for key, value in form.items()}
    echoed["region_codes"] = [str(code) for code in form.getlist("region_codes")]
    return echoed


def event_form_values(event: Event) -> dict[str, Any]:
    """The event page's details form filled in with the event as it is."""

    def local(moment: Any) -> str:
        return local_time(moment, "%Y-%m-%dT%H:%M") if moment else ""

    return {
        "title": event.title,
        "description": event.description,
        "venue": event.venue or "",
        "stream_url": event.stream_url or "",
        "replay_url": event.replay_url or "",
        "captions_url": event.captions_url or "",
        "capacity": "" if event.capacity is None else str(event.capacity),
        "waitlist_enabled": "ja" if event.waitlist_enabled else "",
        "region_codes": list(event.region_codes),
        "reminder_offsets_hours": ", ".join(f"{h:g}" for h in event.reminder_offsets_hours),
        "starts_at": local(event.starts_at),
        "ends_at": local(event.ends_at),
        "registration_opens_at": local(event.registration_opens_at),
        "registration_closes_at": local(event.registration_closes_at),
    }


def refill(event: Event, form: FormData) -> dict[str, Any]:
    """The event's details form with what was sent on top: a refused change shown again."""
    return {**event_form_values(event), **echo(form)}
