"""The web UI: a single-page app (plain ES modules, no build step) served at ``/`` and ``/client/``.
It speaks only the public API (``/client/api`` with the login session), so it can do nothing a
script could not. See docs/ui.md."""
