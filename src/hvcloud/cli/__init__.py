"""The ``hvcloud`` command line."""
