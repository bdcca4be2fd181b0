"""The events service's HTTP face: JSON API routers and their schemas."""
