-- The event's description goes into the calendar invitation, so an updated invitation after
-- a changed description carries the new one.
ALTER TABLE event_schedule ADD COLUMN description text NOT NULL DEFAULT '';
-- Attendance of version 2: how the person attended ('live', 'replay' or NULL: not) and
-- whether analytics issued their certificate (its link goes into their e-mail).
ALTER TABLE attendance ADD COLUMN attended_as text;
ALTER TABLE attendance ADD COLUMN certificate boolean NOT NULL DEFAULT false;
