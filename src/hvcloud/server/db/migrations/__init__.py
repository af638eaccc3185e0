"""Alembic migration environment shipped inside the package; run on every server start."""
