"""The events service's outside parts other than HTTP and SQL: the beacon producer and the
event status cache it checks against, and the iCalendar feed writer."""
