"""Injectable faults for reliability tests: make a command fail, slow down, hang, or run and then
kill the agent before its answer leaves (``exit``: the work is done, the answer is lost).

A plan maps a command's short class name (``StartCommand``) or ``*`` to a fault::

    {"StartCommand": {"mode": "fail", "message": "disk on fire", "count": 2},
     "StopCommand":  {"mode": "delay", "seconds": 3},
     "CopyCommand":  {"mode": "exit", "count": 1},
     "*":            {"mode": "hang"}}

``count`` limits how many times the fault fires (default: always); ``probability`` (0 to 1) makes it
random. The plan is read from ``faults.json`` in the simulator's data directory (re-read when the
file changes) and can be replaced at run time through the agent's simulator control endpoint.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FaultMode = Literal["fail", "delay", "hang", "exit"]
MAX_HANG_SECONDS = 3600.0


class FaultPlanError(ValueError):
    pass


@dataclass
class Fault:
    mode: FaultMode
    seconds: float = 0.0
    message: str = "injected fault"
    count: int | None = None
    probability: float = 1.0

    @classmethod
    def parse(cls, key: str, raw: Any) -> Fault:
        if not isinstance(raw, dict):
            raise FaultPlanError(f"fault for {key} must be an object")
        mode = raw.get("mode")
        if mode not in ("fail", "delay", "hang", "exit"):
            raise FaultPlanError(f"fault for {key}: mode must be fail, delay, hang or exit")
        try:
            seconds = float(raw.get("seconds", MAX_HANG_SECONDS if mode == "hang" else 0.0))
            count = raw.get("count")
            count = None if count is None else int(count)
            prob = float(raw.get("probability", 1.0))
        except (TypeError, ValueError):
            raise FaultPlanError(f"fault for {key}: seconds, count and probability must be numbers") from None
        if not 0 <= seconds <= MAX_HANG_SECONDS or not 0 <= prob <= 1 or (count is not None and count < 0):
            raise FaultPlanError(f"fault for {key}: value out of range")
        return cls(mode=mode, seconds=seconds, message=str(raw.get("message", "injected fault"))[:500],
                   count=count, probability=prob)


class FaultPlan:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._mtime: float | None = None
        self._faults: dict[str, Fault] = {}
        self._lock = threading.RLock()
        self._rng = random.Random()

    def set(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise FaultPlanError("a fault plan is an object of command name → fault")
        parsed = {str(k): Fault.parse(str(k), v) for k, v in raw.items()}
        with self._lock:
            self._faults = parsed

    def _reload(self) -> None:
        if self._path is None:
            return
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            if self._mtime is not None:
                self._mtime = None
                self._faults = {}
            return
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self.set(json.loads(self._path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                self._faults = {}

    def take(self, command: str) -> Fault | None:
        """The fault to apply to one call of ``command`` now, if any (consumes a count)."""
        with self._lock:
            self._reload()
            fault = self._faults.get(command) or self._faults.get("*")
            if fault is None:
                return None
            if fault.count is not None:
                if fault.count <= 0:
                    return None
                fault.count -= 1
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                return None
            return fault
