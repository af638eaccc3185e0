"""What the test guest reports on its serial console (``hvcloud.storage.guest_image``'s markers).

The libvirt driver writes each guest's ttyS0 to ``<console_log_dir>/<name>.log``. The guest prints
one marker per line; the tty turns ``\\n`` into ``\\r\\n`` and kernel messages may fall between the
lines, so every parser here reads only whole lines that *start* with a marker (a user data script
cannot forge a lease: its lines start with ``HVCLOUD-SCRIPT``). A console log spans every boot of
the guest; :func:`last_boot` cuts it to the latest one. When a marker repeats, the last one wins.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from hvcloud.storage import guest_image
from tests.support.wait import wait_for

#: longer lines are ignored (a hostile or broken log cannot make the parsers hold huge strings)
MAX_LINE = 4 << 20
_KEY = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_LEASE_KEYS = ("ip", "mask", "router", "dns", "domain", "host", "server", "t")

Log = str | os.PathLike[str]


def text_of(log: Log) -> str:
    """The console text: ``log`` itself, or the file it names (``""`` while it does not exist)."""
    if isinstance(log, str):
        return log
    try:
        return Path(log).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def lines(log: Log) -> list[str]:
    """The console's lines without ``\\r``, oversized ones dropped."""
    return [ln.replace("\r", "") for ln in text_of(log).split("\n") if len(ln) <= MAX_LINE]


def _tagged(log: Log, marker: str) -> list[str]:
    """The rest of every line that is ``marker`` alone or ``marker`` followed by a space."""
    out: list[str] = []
    for ln in lines(log):
        if ln == marker:
            out.append("")
        elif ln.startswith(marker + " "):
            out.append(ln[len(marker) + 1:])
    return out


def last_boot(log: Log) -> str:
    """The console text from the last boot marker on (all of it if there is none)."""
    text = text_of(log)
    at = text.rfind(guest_image.BOOT_MARKER)
    return text if at < 0 else text[at:]


def _seconds(value: str | None) -> float | None:
    if value is None or not re.fullmatch(r"\d{1,9}(\.\d{1,6})?", value):
        return None
    return float(value)


def nicup_time(log: Log) -> float | None:
    """The guest's uptime when eth0 came up (the last ``HVCLOUD-NICUP t=<s>``)."""
    for rest in reversed(_tagged(log, guest_image.NICUP_MARKER)):
        if rest.startswith("t="):
            t = _seconds(rest[2:].strip())
            if t is not None:
                return t
    return None


def _parse_lease(rest: str) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    for token in rest.split():
        key, eq, value = token.partition("=")
        if not eq or key not in _LEASE_KEYS or key in fields:
            return None
        fields[key] = value
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", fields.get("ip", "")):
        return None
    return fields


def lease(log: Log) -> dict[str, str] | None:
    """The last well-formed lease the guest reported: ``ip``, ``mask`` (dotted), ``router``,
    ``dns`` (comma-separated), ``domain``, ``host``, ``server`` (the DHCP server) and ``t`` (uptime
    at the lease); ``None`` before any, or when the guest reported ``HVCLOUD-LEASE none`` last."""
    for rest in reversed(_tagged(log, guest_image.LEASE_MARKER)):
        if rest.strip() == "none":
            return None
        parsed = _parse_lease(rest)
        if parsed is not None:
            return parsed
    return None


def lease_gave_up(log: Log) -> bool:
    """The guest's last lease report is ``HVCLOUD-LEASE none`` (its quick DHCP attempts failed)."""
    reports = [r.strip() for r in _tagged(log, guest_image.LEASE_MARKER)]
    return bool(reports) and reports[-1] == "none"


def nicup_to_lease_seconds(log: Log) -> float | None:
    """Seconds from eth0 up to the lease, by the guest's own clock (``None`` if either is missing)."""
    got = lease(log)
    up = nicup_time(log)
    t = _seconds(got.get("t")) if got else None
    return None if t is None or up is None else round(t - up, 3)


def _decode_b64(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None


def meta(log: Log) -> dict[str, str]:
    """The metadata lines: ``{key: value}``; ``<key>-b64`` values are decoded and stored under
    ``key``. Errors (see :func:`meta_errors`) and malformed lines are left out."""
    out: dict[str, str] = {}
    for rest in _tagged(log, guest_image.META_MARKER):
        key, _, value = rest.partition(" ")
        if key == "error" or not _KEY.match(key):
            continue
        if key.endswith("-b64"):
            decoded = _decode_b64(value.strip())
            if decoded is not None:
                out[key[:-4]] = decoded
        else:
            out[key] = value
    return out


def meta_errors(log: Log) -> set[str]:
    """The keys the guest reported ``HVCLOUD-META error <key>`` for."""
    out: set[str] = set()
    for rest in _tagged(log, guest_image.META_MARKER):
        word, _, key = rest.partition(" ")
        if word == "error" and _KEY.match(key.strip()):
            out.add(key.strip())
    return out


def script_lines(log: Log) -> list[str]:
    """The output lines of the guest's ``#!/bin/sh`` user data script, in order."""
    return _tagged(log, guest_image.SCRIPT_MARKER)


def script_rc(log: Log) -> int | None:
    """The user data script's exit status (the last ``HVCLOUD-SCRIPT-DONE rc=<n>``)."""
    for rest in reversed(_tagged(log, guest_image.SCRIPT_DONE_MARKER)):
        m = re.fullmatch(r"rc=(\d{1,3})", rest.strip())
        if m:
            return int(m.group(1))
    return None


def marker_lines(log: Log, marker: str) -> list[str]:
    """Every line that is ``marker`` or starts with ``marker`` and a space, whole."""
    return [ln for ln in lines(log) if ln == marker or ln.startswith(marker + " ")]


def wait_for_marker(path: os.PathLike[str], marker: str, timeout: float = 180, count: int = 1) -> str:
    """Wait until the console file at ``path`` holds ``count`` lines with ``marker``; the last one."""
    def probe() -> str | None:
        found = marker_lines(Path(path), marker)
        return found[-1] if len(found) >= count else None

    return wait_for(f"{marker!r} on the console {os.fspath(path)}", probe, timeout, interval=0.25)
