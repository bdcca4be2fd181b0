"""Every Kafka message schema STO Live sends or receives, and nowhere else.

``base`` holds the envelope every message shares; one module per topic holds that topic's
messages; ``registry`` maps ``(type, version)`` to a model and chains upcasters; ``codec``
turns messages into Kafka values and headers and back; ``topics`` names every topic with its
partition count and configs.
"""
