"""One managed host as the agent sees it: its driver, storage, identity and per-VM locks.

An agent process normally serves one host; the simulator can serve many, each reached on its own
loopback address. ``HostRegistry`` picks the host from the address a request arrived on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hvcloud.atomic_file import load_json, save_json
from hvcloud.hypervisor.driver import Driver
from hvcloud.router.api import RouterHost
from hvcloud.storage.backend import PoolRef, StorageBackend

if TYPE_CHECKING:
    from hvcloud.agent.dispatch import CommandHook


@dataclass
class HostIdentity:
    """What the management server told the agent in the startup exchange."""

    guid: str | None = None
    zone: str | None = None
    pod: str | None = None
    cluster: str | None = None
    name: str | None = None
    private_ip: str | None = None


class VmLocks:
    """One asyncio lock per VM name, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users <= 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class HostContext:
    def __init__(self, address: str, driver: Driver, storage: StorageBackend, data_dir: Path,
                 *, hooks: Sequence[CommandHook] = (), stop_timeout: float = 120.0,
                 routers: RouterHost | None = None, default_trunk: str | None = None) -> None:
        self.address = address
        self.driver = driver
        self.storage = storage
        #: the virtual routers this host runs; None: it runs none and refuses router commands
        self.routers = routers
        #: the bridge a router's guest port joins when its NIC names no traffic label (the same
        #: default the host's VM NICs get)
        self.default_trunk = default_trunk
        self.data_dir = data_dir
        #: run around every dispatched command; the core installs none (the simulator's wiring
        #: installs its fault injection here)
        self.hooks: tuple[CommandHook, ...] = tuple(hooks)
        self.stop_timeout = stop_timeout
        self.locks = VmLocks()
        self._identity_file = data_dir / "identity.json"
        self._pools_file = data_dir / "pools.json"
        self.identity = HostIdentity(**load_json(self._identity_file, {}))
        self.pools: dict[str, PoolRef] = {
            uuid: PoolRef(**rec) for uuid, rec in load_json(self._pools_file, {}).items()}
        storage.restore_pools(list(self.pools.values()))

    def remember_identity(self, identity: HostIdentity) -> None:
        self.identity = identity
        save_json(self._identity_file, asdict(identity))

    def remember_pool(self, pool: PoolRef) -> None:
        self.pools[pool.uuid] = pool
        save_json(self._pools_file, {u: asdict(p) for u, p in self.pools.items()})

    def forget_pool(self, uuid: str) -> None:
        if self.pools.pop(uuid, None) is not None:
            save_json(self._pools_file, {u: asdict(p) for u, p in self.pools.items()})

    @property
    def host_ip(self) -> str:
        return self.identity.private_ip or self.address

    def describe(self) -> str:
        return json.dumps({"address": self.address, "driver": self.driver.name,
                           "guid": self.identity.guid})


class HostRegistry:
    """Maps the local address a request was received on to the host it is for."""

    def __init__(self, hosts: list[HostContext]) -> None:
        if not hosts:
            raise ValueError("an agent serves at least one host")
        self.hosts = hosts
        self._by_address = {h.address: h for h in hosts}
        self._single = hosts[0] if len(hosts) == 1 else None

    def resolve(self, local_address: str | None) -> HostContext | None:
        if self._single is not None:
            return self._single
        if local_address is None:
            return None
        return self._by_address.get(local_address)

    def close(self) -> None:
        for h in self.hosts:
            h.driver.close()
