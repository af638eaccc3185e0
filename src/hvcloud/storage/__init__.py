"""hvcloud.storage."""
