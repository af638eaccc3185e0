"""The CloudStack-compatible HTTP API (``/client/api``)."""
