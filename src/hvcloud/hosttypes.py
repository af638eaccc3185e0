"""Value types about the host that the drivers, storage and networking all speak.

They sit below every package (no imports from hvcloud) so that ``storage`` and ``network`` need not
import ``hypervisor`` for them while drivers import ``storage`` and ``network``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: bounds of a requested VM thumbnail (both sides): the API, the agent and the drivers check the same
THUMBNAIL_MIN_SIDE = 16
THUMBNAIL_MAX_SIDE = 1920


@dataclass(frozen=True)
class HostNic:
    name: str
    ip: str
    netmask: str
    mac: str


@dataclass(frozen=True)
class PoolStats:
    path: str
    capacity_bytes: int
    available_bytes: int

    @property
    def used_bytes(self) -> int:
        return self.capacity_bytes - self.available_bytes
