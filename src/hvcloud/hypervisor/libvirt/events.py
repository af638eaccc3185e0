"""libvirt's event loop in a daemon thread, so lifecycle events reach a Python callback.

libvirt wants its default event implementation registered once per process, before the connection
that subscribes is opened; :func:`ensure_event_loop` does both at most once.
"""

from __future__ import annotations

import threading

import libvirt

from hvcloud import logs

log = logs.get(__name__)

_lock = threading.Lock()
_started = False


def _loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError as exc:  # keep the thread alive; the next turn may succeed
            log.warning("libvirt.event_loop_error", error=str(exc))


def ensure_event_loop() -> None:
    global _started
    with _lock:
        if _started:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_loop, name="libvirt-events", daemon=True).start()
        _started = True
