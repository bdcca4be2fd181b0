"""The notifications service's rules: when reminders fall, what a calendar invitation says,
how a personalised mailing message is built, and what an organiser's text becomes."""

from __future__ import annotations

import asyncio
import quopri
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar
import pytest

from sto_notifications import domain
from sto_notifications.adapters.calendar import Invitation, invitation_ics
from sto_notifications.adapters.mime import MailingComposer, build_message
from sto_notifications.adapters.rendering import (
    Block,
    MailingRenderer,
    UpcomingEvent,
    parse_body,
)
from sto_notifications.adapters.smtp import RateLimiter
from sto_notifications.service import web_version_of

AMS = ZoneInfo("Europe/Amsterdam")


# --- reminders -------------------------------------------------------------------------------


def test_reminders_are_elapsed_hours_before_the_start_across_the_end_of_summer_time() -> None:
    starts = datetime(2026, 10, 25, 10, 0, tzinfo=AMS)  # CET, 09:00 UTC
    planned = domain.plan_reminders(starts, (24.0, 1.0), now=datetime(2026, 10, 1, tzinfo=UTC))
    assert [(p.offset_minutes, p.due_at, p.status) for p in planned] == [
        (1440, datetime(2026, 10, 24, 9, 0, tzinfo=UTC), "pending"),  # 11:00 CEST
        (60, datetime(2026, 10, 25, 8, 0, tzinfo=UTC), "pending"),
    ]
    assert planned[0].due_at.astimezone(AMS).hour == 11


def test_hour_offsets_may_be_fractional_and_duplicates_count_once() -> None:
    starts = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    planned = domain.plan_reminders(starts, (1.5, 1.5, 0.25, 0.0), now=starts - timedelta(days=1))
    assert [p.offset_minutes for p in planned] == [90, 15]


def test_a_reminder_whose_moment_passed_at_planning_is_skipped() -> None:
    starts = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    three_hours_before = starts - timedelta(hours=3)
    planned = domain.plan_reminders(starts, (24.0, 1.0), now=three_hours_before)
    assert {p.offset_minutes: p.status for p in planned} == {1440: "skipped", 60: "pending"}
    too_late = domain.plan_reminders(starts, (24.0, 1.0), now=starts - timedelta(minutes=30))
    assert {p.status for p in too_late} == {"skipped"}


def test_a_due_reminder_is_caught_up_until_the_event_starts_then_missed() -> None:
    starts = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    due = starts - timedelta(hours=24)
    assert domain.catch_up_verdict(due, starts, due - timedelta(seconds=1)) == "wait"
    assert domain.catch_up_verdict(due, starts, due) == "send"
    assert domain.catch_up_verdict(due, starts, starts - timedelta(minutes=1)) == "send"
    assert domain.catch_up_verdict(due, starts, starts) == "missed"


def test_one_reminder_key_per_registration_offset_and_revision() -> None:
    registration = uuid.uuid4()
    key = domain.reminder_dedup_key(registration, 60, 3)
    assert key == domain.reminder_dedup_key(registration, 60, 3)
    assert key != domain.reminder_dedup_key(registration, 60, 4)
    assert key != domain.reminder_dedup_key(registration, 1440, 3)


def test_reminder_labels_say_the_duration() -> None:
    assert domain.reminder_label(1440) == "over 1 dag"
    assert domain.reminder_label(2880) == "over 2 dagen"
    assert domain.reminder_label(60) == "over 1 uur"
    assert domain.reminder_label(180) == "over 3 uur"
    assert domain.reminder_label(90) == "over 90 minuten"


# --- people and links ------------------------------------------------------------------------


def test_erasure_names_an_address_by_its_trimmed_lower_case_hash() -> None:
    assert domain.email_sha256(" Anna@School.NL ") == domain.email_sha256("anna@school.nl")


@pytest.mark.parametrize(
    "address",
    ["anna@school.nl\r\nBcc: all@x.nl", "anna@school.nl, bob@x.nl", "<anna@school.nl>",
     "anna school@x.nl", "anna@", "a" * 250 + "@x.nl"],
)  # fmt: skip
def test_an_address_that_could_carry_a_second_recipient_or_header_is_refused(
    address: str,
) -> None:
    assert not domain.is_valid_address(address)


def test_a_display_name_is_one_line_without_control_characters() -> None:
    assert domain.display_name("Eve\r\nBcc: all@x.nl\t ") == "Eve Bcc: all@x.nl"


def test_an_event_audience_needs_an_event() -> None:
    assert domain.Audience(kind="no_shows").problems()
    assert not domain.Audience(kind="no_shows", event_id=uuid.uuid4()).problems()
    audience = domain.Audience(kind="subscribers", regions=("NN",), interests=("PIE",))
    assert domain.Audience.from_json(audience.as_json()) == audience


def test_only_a_draft_or_scheduled_mailing_can_be_changed_or_scheduled() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    domain.check_schedule("draft", now + timedelta(hours=1), now)
    with pytest.raises(domain.MailingRefused):
        domain.check_schedule("sending", now, now)
    with pytest.raises(domain.MailingRefused):
        domain.check_schedule("draft", now - timedelta(hours=1), now)
    with pytest.raises(domain.MailingRefused):
        domain.check_editable("sent")


def test_only_5xx_is_permanent_and_backoff_doubles_to_a_cap() -> None:
    assert domain.is_permanent(550)
    assert not domain.is_permanent(451)
    assert not domain.is_permanent(None)
    assert [domain.retry_delay(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert domain.retry_delay(30) == timedelta(minutes=30)


# --- calendar --------------------------------------------------------------------------------


def invitation(sequence: int = 0, method: str = "REQUEST") -> Invitation:
    starts = datetime(2026, 10, 25, 10, 0, tzinfo=AMS)
    return Invitation(
        registration_id=uuid.UUID("0f9c2d1e-2222-4b7a-8d3e-9a8b7c6d5e4f"),
        sequence=sequence,
        method=method,  # type: ignore[arg-type]
        title="STO LIVE #27; onderzoek, regio's",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        attendee_name="Anna de Vries",
        attendee_email="anna@school.nl",
        organiser_email="noreply@sterktechniekonderwijs.nl",
        url="https://stolive.nl/registrations/r/x",
    )


def test_an_invitation_is_read_by_a_calendar_parser_with_utc_times() -> None:
    stamp = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    calendar = icalendar.Calendar.from_ical(invitation_ics(invitation(), stamp))
    [event] = [c for c in calendar.walk() if isinstance(c, icalendar.Event)]
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event.decoded("DTSTART") == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 10, 25, 10, 0, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "STO LIVE #27; onderzoek, regio's"
    assert (
        str(event["UID"])
        == "0f9c2d1e-2222-4b7a-8d3e-9a8b7c6d5e4f@stolive.sterktechniekonderwijs.nl"
    )


def test_a_cancellation_keeps_the_uid_and_says_cancelled() -> None:
    stamp = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    first = icalendar.Calendar.from_ical(invitation_ics(invitation(), stamp))
    cancel = icalendar.Calendar.from_ical(invitation_ics(invitation(2, "CANCEL"), stamp))
    [a] = [c for c in first.walk() if isinstance(c, icalendar.Event)]
    [b] = [c for c in cancel.walk() if isinstance(c, icalendar.Event)]
    assert str(cancel["METHOD"]) == "CANCEL"
    assert str(b["STATUS"]) == "CANCELLED"
    assert str(a["UID"]) == str(b["UID"])
    assert int(str(b["SEQUENCE"])) == 2


def test_a_transactional_message_carries_the_calendar_method_and_refuses_header_breaks() -> None:
    message = build_message(
        email_id=uuid.uuid4(),
        sender="STO Live <noreply@sterktechniekonderwijs.nl>",
        recipient="anna@school.nl",
        subject="Je bent aangemeld: STO LIVE",
        text="Tekst",
        html_body="<p>Tekst</p>",
        ics=invitation_ics(invitation(), datetime(2026, 10, 1, tzinfo=UTC)),
        ics_method="REQUEST",
    )
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_message(
            email_id=uuid.uuid4(),
            sender="STO Live <noreply@sterktechniekonderwijs.nl>",
            recipient="anna@school.nl",
            subject="Hallo\r\nBcc: all@x.nl",
            text="x",
            html_body="x",
        )


# --- mailings --------------------------------------------------------------------------------


def composer(
    body: str = "Eerste alinea.\n\n## Kop\n\n[Bekijk](https://sto.nl/x)",
) -> MailingComposer:
    rendered = MailingRenderer().render(
        subject="De instroomcijfers van schooljaar 2023-2024 zijn bekend — één overzicht",
        body=body,
        date=datetime(2024, 2, 6, 8, 3, tzinfo=UTC),
        web_url="https://stolive.nl/notifications/mailings/m/online",
        events=[
            UpcomingEvent(
                "STO LIVE-webinar over wat we leren van onderzoek",
                datetime(2024, 3, 6, 15, 30, tzinfo=AMS),
                "",
                "https://stolive.nl/registrations/events/e/aanmelden",
            )
        ],
        personal=True,
    )
    return MailingComposer(
        mailing_id=uuid.uuid4(),
        sender="Sterk Techniekonderwijs <info@sterktechniekonderwijs.nl>",
        rendered=rendered,
    )


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None
    return str(body.get_content())


def test_a_personalised_message_is_correct_mime_with_the_person_in_place() -> None:
    unsubscribe = "https://stolive.nl/notifications/afmelden/" + "a" * 32 + ".token"
    data = composer().compose(uuid.uuid4(), "zoe@school.nl", "Zoë <de> Vries & co", unsubscribe)
    message = parse(data)
    assert not message.defects
    assert message["To"].addresses[0].display_name == "Zoë <de> Vries & co"
    assert message["To"].addresses[0].addr_spec == "zoe@school.nl"
    assert message["Subject"] == (
        "De instroomcijfers van schooljaar 2023-2024 zijn bekend — één overzicht"
    )
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = part(message, "plain"), part(message, "html")
    assert "Beste Zoë <de> Vries & co," in text
    assert f"Afmelden: {unsubscribe}" in text
    assert "Beste Zoë &lt;de&gt; Vries &amp; co," in html
    assert f'<a href="{unsubscribe}" style="color:#00507d;">Afmelden</a>' in html
    assert "Bijeenkomst" in html
    assert "woensdag 6 maart 2024, 15:30" in text
    assert data.isascii(), "7-bit: no server needs 8BITMIME"
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    body_lines = data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76


def test_a_long_name_and_link_stay_within_quoted_printable_line_limits() -> None:
    data = composer().compose(uuid.uuid4(), "x@school.nl", "ë" * 120, "https://x.nl/" + "u" * 300)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    body_lines = data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76
    message = parse(data)
    assert "Beste " + "ë" * 120 + "," in part(message, "plain")
    assert quopri.decodestring(b"=C3=AB") == "ë".encode()


def test_a_name_cannot_inject_a_header_into_a_mailing_message() -> None:
    data = composer().compose(
        uuid.uuid4(), "eve@school.nl", "Eve\r\nBcc: everyone@school.nl", "https://x.nl/u"
    )
    message = parse(data)
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["eve@school.nl"]


def test_each_recipient_has_their_own_message_id_and_a_resend_keeps_it() -> None:
    build = composer()
    first, second = uuid.uuid4(), uuid.uuid4()
    a = parse(build.compose(first, "a@x.nl", "A", "https://x.nl/a"))
    again = parse(build.compose(first, "a@x.nl", "A", "https://x.nl/a"))
    b = parse(build.compose(second, "b@x.nl", "B", "https://x.nl/b"))
    assert a["Message-ID"] == again["Message-ID"] != b["Message-ID"]


def test_the_web_version_has_no_personal_parts() -> None:
    rendered = MailingRenderer().render(
        subject="Nieuws",
        body="Tekst.",
        date=datetime(2024, 2, 6, tzinfo=UTC),
        web_url="https://stolive.nl/online",
        events=[],
        personal=True,
    )
    online = web_version_of(rendered.html)
    assert "Beste lezer," in online
    assert "Afmelden" not in online
    assert "%%STO" not in online
    assert "Online lezen" in online


def test_an_organisers_text_becomes_paragraphs_headings_and_buttons_never_html() -> None:
    blocks = parse_body(
        "DUO heeft cijfers\ngepubliceerd.\n\n## Regioportretten\n"
        "[Bekijk de regioportretten](https://sto.nl/regio)\n\n<script>alert(1)</script>\n\n"
        "[geen knop](javascript:alert(1))"
    )
    assert blocks == [
        Block("paragraph", "DUO heeft cijfers gepubliceerd."),
        Block("heading", "Regioportretten"),
        Block("button", "Bekijk de regioportretten", "https://sto.nl/regio"),
        Block("paragraph", "<script>alert(1)</script>"),
        Block("paragraph", "[geen knop](javascript:alert(1))"),
    ]
    html = (
        MailingRenderer()
        .render(
            subject="x",
            body="<script>alert(1)</script>",
            date=datetime(2024, 2, 6, tzinfo=UTC),
            web_url="https://x",
            events=[],
            personal=False,
        )
        .html
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


async def test_the_rate_limit_spaces_sends_over_every_lane() -> None:
    limiter = RateLimiter(per_s=50)
    started = time.monotonic()
    await asyncio.gather(*(limiter.wait() for _ in range(11)))
    assert time.monotonic() - started >= 0.19  # 10 intervals of 20 ms after the first
    unlimited = RateLimiter(per_s=0)
    started = time.monotonic()
    await asyncio.gather(*(unlimited.wait() for _ in range(1000)))
    assert time.monotonic() - started < 0.5
