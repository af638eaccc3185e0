"""The async job engine: a DB-backed queue with per-object ordering, leases and crash recovery.

* :mod:`handlers` — job handlers registered by name and the context they run in.
* :mod:`store` — the job table operations: submit, claim, progress, finish, recovery.
* :mod:`leases` — management-server liveness (heartbeats) and takeover of a dead server's jobs.
* :mod:`engine` — the worker pool inside the server process.
"""
