"""The outside parts the registrations service talks to, other than its database and Kafka."""
