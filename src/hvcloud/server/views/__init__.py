"""Views: database rows rendered as CloudStack response objects (used by api and by jobs)."""
