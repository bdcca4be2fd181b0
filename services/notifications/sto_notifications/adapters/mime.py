"""Build MIME messages: one at a time for transactional emails, by substitution for mailings.

Transactional emails go through ``email.message.EmailMessage``, whose policy refuses CR/LF in
header values, so a name cannot inject a header.

A mailing goes to thousands of people with the same content, and the stdlib builds only about
340 messages/s here. ``MailingComposer`` therefore builds everything that is the same for
every recipient once, already encoded, and per recipient only:

- the ``To``, ``Date``, ``Message-ID`` and ``List-Unsubscribe`` header lines, from an address
  that ``domain.is_valid_address`` accepted and a name ``domain.display_name`` made one line
  (RFC 2047-encoded by ``formataddr`` when not ASCII): no header break can get in;
- the personal values in the bodies. Bodies are quoted-printable; each constant piece is
  encoded once and ends with a soft line break (``=\\r\\n``), and each personal value is
  encoded on its own and followed by a soft line break too. A decoder joins soft-broken lines,
  so the recipient sees exactly the rendered text with the value in place, every encoded line
  stays under 77 characters, and the message stays 7-bit: correct MIME at byte-join speed.

The ``Message-ID`` is derived from the recipient row, so a resend after a crash (see
``service.py``) is recognisably the same message.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable
from email import policy, quoprimime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

from sto_notifications.adapters.rendering import NAME_MARK, UNSUBSCRIBE_MARK, RenderedEmail
from sto_notifications.domain import display_name

MESSAGE_ID_DOMAIN = "stolive.sterktechniekonderwijs.nl"
_MARKS = re.compile(f"({re.escape(NAME_MARK)}|{re.escape(UNSUBSCRIBE_MARK)})")
_SOFT_BREAK = b"=\r\n"


def build_message(
    *,
    email_id: uuid.UUID,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html_body: str,
    ics: str | None = None,
    ics_method: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{email_id.hex}@{MESSAGE_ID_DOMAIN}>"
    message["X-STO-Email-Id"] = str(email_id)
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    if ics:
        # Calendar clients read the method from the Content-Type of the calendar part.
        message.add_attachment(
            ics.encode(),
            maintype="text",
            subtype="calendar",
            filename="uitnodiging.ics" if ics_method != "CANCEL" else "annulering.ics",
            params={"method": ics_method or "REQUEST", "charset": "utf-8"},
        )
    return message


def _qp(text: str) -> bytes:
    """Quoted-printable of UTF-8 text; lines of at most 75 so a soft break still fits.

    Printable ASCII without ``=`` is its own quoted-printable encoding: names and links
    usually are, and then only need cutting into soft-broken lines."""
    if text.isascii() and text.isprintable() and "=" not in text:
        raw = text.encode("ascii")
        return _SOFT_BREAK.join([raw[i : i + 75] for i in range(0, len(raw), 75)])
    return quoprimime.body_encode(
        text.encode("utf-8").decode("latin-1"), maxlinelen=75, eol="\r\n"
    ).encode("ascii")


def _pieces(rendered: str) -> list[bytes | str]:
    """Constant pieces encoded (each ending in a soft break) and the markers between them."""
    pieces: list[bytes | str] = []
    for part in _MARKS.split(rendered.replace("\r\n", "\n")):
        if part in (NAME_MARK, UNSUBSCRIBE_MARK):
            pieces.append(part)
        elif part:
            pieces.append(_qp(part) + _SOFT_BREAK)
    return pieces


def _header(name: str, value: str) -> bytes:
    folded: str = policy.SMTP.fold(name, value)
    return folded.encode("ascii")


class MailingComposer:
    """Personalised mailing messages from one rendering (see the module docstring)."""

    def __init__(
        self,
        *,
        mailing_id: uuid.UUID,
        sender: str,
        rendered: RenderedEmail,
        list_name: str = "Nieuwsbrief Sterk Techniekonderwijs",
    ) -> None:
        self.sender_address = parseaddr(sender)[1]
        boundary = f"=_sto_{mailing_id.hex}"
        self._head = b"".join(
            (
                _header("From", sender),
                _header("Subject", rendered.subject),
                b"MIME-Version: 1.0\r\n",
                _header("List-Id", f"{list_name} <newsletter.{MESSAGE_ID_DOMAIN}>"),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                b"Precedence: bulk\r\n",
                f"X-STO-Mailing-Id: {mailing_id}\r\n".encode(),
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
            )
        )
        self._mid_suffix = f".{mailing_id.hex[:12]}@{MESSAGE_ID_DOMAIN}>\r\n".encode()
        part_head = (
            "\r\n--{b}\r\nContent-Type: text/{t}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._text_head = part_head.format(b=boundary, t="plain").encode()
        self._html_head = part_head.format(b=boundary, t="html").encode()
        self._end = f"\r\n--{boundary}--\r\n".encode()
        self._text = _pieces(rendered.text)
        self._html = _pieces(rendered.html)

    def compose(
        self, recipient_id: uuid.UUID, address: str, name: str, unsubscribe_url: str
    ) -> bytes:
        """The whole message for one recipient, as bytes for ``SMTP.sendmail``."""
        greeting = display_name(name) or "lezer"
        text_values = {
            NAME_MARK: _qp(greeting) + _SOFT_BREAK,
            UNSUBSCRIBE_MARK: _qp(unsubscribe_url) + _SOFT_BREAK,
        }
        html_values = {
            NAME_MARK: _qp(html.escape(greeting)) + _SOFT_BREAK,
            UNSUBSCRIBE_MARK: _qp(html.escape(unsubscribe_url)) + _SOFT_BREAK,
        }
        to = formataddr((display_name(name), address), charset="utf-8")
        out: list[bytes] = [
            self._head,
            b"To: ",
            to.encode("ascii"),
            b"\r\nDate: ",
            formatdate(usegmt=True).encode(),
            b"\r\nMessage-ID: <",
            recipient_id.hex.encode(),
            self._mid_suffix,
            b"List-Unsubscribe: <",
            unsubscribe_url.encode("ascii"),
            b">\r\n",
            self._text_head,
        ]
        out.extend(_fill(self._text, text_values))
        out.append(self._html_head)
        out.extend(_fill(self._html, html_values))
        out.append(self._end)
        return b"".join(out)


def _fill(pieces: list[bytes | str], values: dict[str, bytes]) -> Iterable[bytes]:
    return [piece if isinstance(piece, bytes) else values[piece] for piece in pieces]
