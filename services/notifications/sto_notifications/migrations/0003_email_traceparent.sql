-- The trace an email belongs to (W3C traceparent of the span that queued it, usually the
-- consumer span of the message that caused it): the sender's SMTP span continues that trace,
-- so one trace runs from a sign-up to its confirmation email. NULL: queued outside any trace
-- (reminders from the scheduler), sent in a trace of its own.
ALTER TABLE emails ADD COLUMN traceparent text;
