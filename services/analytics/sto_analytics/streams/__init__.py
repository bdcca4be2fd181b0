"""Analytics' Kafka face, the faust-streaming side: the configured app, its tables and its
agents (``registrations``, ``viewers``, ``events``), the retention timer (``retention``), the
worker's gauges and how the worker runs. ``bootstrap.worker_app`` registers them; what they
write goes through the use cases in ``service`` (``ReadModelWriter``)."""
