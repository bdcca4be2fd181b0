"""Where the events service keeps its state: the port (``port``), the PostgreSQL repository
(``postgres``) and the in-memory fake the use-case tests run on (``memory``)."""

from sto_events.repository.port import EventFilter, EventsRepository

__all__ = ["EventFilter", "EventsRepository"]
