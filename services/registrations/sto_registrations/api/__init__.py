"""The registrations service's HTTP face: public pages, JSON API, and their schemas."""
