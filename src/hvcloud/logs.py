"""Structured logging for every hvcloud process (structlog over the standard library).

Secrets never reach a log: callers log names and ids, never request bodies, and the processor
below masks any key that looks like a credential in case one slips through.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_MARKERS = ("password", "secret", "token", "signature", "apikey", "api_key", "sessionkey")
#: control characters, lone surrogates and bidi overrides: they forge log lines on a console, and a
#: lone surrogate (legal in a JSON request as ``\\ud800``) cannot even be written to a UTF-8 stream
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(m in key.lower() for m in _SECRET_MARKERS):
            event[key] = "***"
    return event


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def neutralise(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Escape unsafe characters in string values (values come from untrusted requests); a formatted
    traceback keeps its line breaks."""
    for key, value in event.items():
        if isinstance(value, str):
            unsafe = _SURROGATES if key == "exception" else _UNSAFE
            if unsafe.search(value):
                event[key] = unsafe.sub(_escape, value)
    return event


def configure(level: str = "info", json_output: bool | None = None) -> None:
    """Set up structlog once per process; JSON lines when not on a terminal."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(message)s")
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            neutralise,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # the stream is looked up per line and loggers are not cached, so that a later configure()
        # (a test's, another command's) takes effect for loggers bound before it
        logger_factory=_stderr_logger,
    )


def _stderr_logger(*args: Any) -> structlog.PrintLogger:
    """A logger on the current ``sys.stderr`` (looked up per line, as structlog's default does for
    stdout, so that a replaced stream, e.g. a test's capture, sees the lines)."""
    return structlog.PrintLogger(sys.stderr)


def get(name: str) -> Any:
    """The logger for ``name``: the one logging API of hvcloud. Call it with an event name and
    keyword fields (``log.info("volume.created", pool=uuid)``), never with formatted text or secrets.

    Until a process calls :func:`configure`, lines go to stderr in structlog's default form (so that
    a command's own output on stdout, JSON or check reports, is never mixed with log lines), with
    credentials masked and unsafe characters escaped as in the configured form."""
    if not structlog.is_configured():
        *steps, _ = structlog.get_config()["processors"]
        # plain tracebacks: the default (rich) one prints every frame's locals, request secrets included
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                                 exception_formatter=structlog.dev.plain_traceback)
        structlog.configure(processors=[*steps, _mask_secrets, neutralise, renderer],
                            logger_factory=_stderr_logger)
    return structlog.get_logger(name)
