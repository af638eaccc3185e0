"""hvcloud.network."""
