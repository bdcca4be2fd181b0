"""Render Dutch emails from Jinja2 templates: HTML with a plain-text alternative.

Transactional emails are rendered per person. A mailing is rendered once, with markers where
the personal parts go (the name and the unsubscribe link); ``mime.MailingComposer`` fills them
in per recipient, so 10,000 recipients cost one template rendering, not 10,000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from stolive_shared.contracts.notifications import EmailKind
from stolive_shared.templating import local_time

TEMPLATES = Path(__file__).parent.parent / "templates"

SUBJECTS: dict[str, str] = {
    "registration_confirmed": "Je bent aangemeld: {event_title}",
    "registration_waitlisted": "Je staat op de wachtlijst: {event_title}",
    "registration_promoted": "Er is een plek vrij: je bent aangemeld voor {event_title}",
    "registration_cancelled": "Je aanmelding is geannuleerd: {event_title}",
    "registration_repeated": "Je was al aangemeld: {event_title}",
    "event_rescheduled": "Nieuwe datum: {event_title}",
    "event_cancelled": "Gaat niet door: {event_title}",
    "event_live": "We zijn live: {event_title}",
    "reminder": "Herinnering: {event_title} begint {label}",
    "event_updated": "Gewijzigd: {event_title}",
    "replay": "Bekijk de terugblik: {event_title}",
    "thank_you": "Bedankt voor je deelname aan {event_title}",
    "certificate_ready": "Je certificaat staat klaar: {event_title}",
    "subscription_confirmation": "Bevestig je aanmelding voor de nieuwsbrief van STO",
    "data_export": "Je gegevens bij Sterk Techniekonderwijs",
    "organiser_sign_in": "Inloggen bij STO Live",
}

# Where a mailing's personal parts go; replaced per recipient after rendering.
NAME_MARK = "%%STO-NAAM%%"
UNSUBSCRIBE_MARK = "%%STO-AFMELDEN%%"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def one_line(text: str) -> str:
    """A subject is one header line: never let a title carry a line break into it."""
    return " ".join(text.split())


def _environments(directory: Path) -> tuple[Environment, Environment]:
    loader = FileSystemLoader(directory)
    html = Environment(
        loader=loader, autoescape=select_autoescape(["html"]), undefined=StrictUndefined
    )
    text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)
    for env in (html, text):
        env.filters["local_time"] = local_time
    return html, text


class EmailRenderer:
    def __init__(self, directory: Path | None = None) -> None:
        self._html, self._text = _environments(directory or TEMPLATES / "email")

    def render(self, kind: EmailKind, context: dict[str, object]) -> RenderedEmail:
        subject = one_line(SUBJECTS[kind].format(**context))
        return RenderedEmail(
            subject=subject,
            text=self._text.get_template(f"{kind}.txt").render(subject=subject, **context),
            html=self._html.get_template(f"{kind}.html").render(subject=subject, **context),
        )


# --- mailings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" or "button"
    text: str
    url: str = ""


_BUTTON = re.compile(r"^\[(?P<text>[^\]]+)\]\((?P<url>https?://[^\s)]+)\)$")


def parse_body(body: str) -> list[Block]:
    """The organiser's text: blank lines part paragraphs, ``## `` starts a heading and a line
    ``[Bekijk de cijfers](https://...)`` alone becomes a button. Nothing else is markup, so
    nothing an organiser types can inject HTML (the templates escape every block)."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", body.replace("\r\n", "\n").strip()):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        paragraph: list[str] = []
        for line in lines:
            button = _BUTTON.match(line)
            if line.startswith("## ") or button:
                if paragraph:
                    blocks.append(Block("paragraph", " ".join(paragraph)))
                    paragraph = []
                if button:
                    blocks.append(Block("button", button["text"].strip(), button["url"]))
                else:
                    blocks.append(Block("heading", line[3:].strip()))
            else:
                paragraph.append(line)
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
    return blocks


@dataclass(frozen=True)
class UpcomingEvent:
    title: str
    starts_at: datetime
    description: str
    signup_url: str


class MailingRenderer:
    def __init__(self, directory: Path | None = None) -> None:
        self._html, self._text = _environments(directory or TEMPLATES / "mailing")

    def render(
        self,
        *,
        subject: str,
        body: str,
        date: datetime,
        web_url: str,
        events: list[UpcomingEvent],
        personal: bool,
    ) -> RenderedEmail:
        """``personal``: with the name and unsubscribe markers; else the web version."""
        subject = one_line(subject)
        context: dict[str, object] = {
            "subject": subject,
            "blocks": parse_body(body),
            "date": date,
            "web_url": web_url,
            "events": events,
            "name": NAME_MARK if personal else "lezer",
            "unsubscribe_url": UNSUBSCRIBE_MARK if personal else "",
        }
        return RenderedEmail(
            subject=subject,
            text=self._text.get_template("newsletter.txt").render(**context),
            html=self._html.get_template("newsletter.html").render(**context),
        )
