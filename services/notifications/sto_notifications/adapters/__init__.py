"""The outside parts the notifications service talks to, other than its database: SMTP, the
MIME and iCalendar formats, the e-mail templates, the events service's agenda."""
