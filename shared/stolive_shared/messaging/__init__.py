"""Kafka plumbing: producer and admin factories, the outbox writer and relay, the consumer loop."""
