"""A small in-memory :class:`~hvcloud.router.api.RouterHost` for the agent's handler tests: it keeps
what it is told, as the protocol describes (idempotent, entries replaced by MAC and by IP, kept over
a stop, dropped by destroy), and records every call. It validates nothing the agent should have
refused first, so a test sees exactly what reached the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hvcloud.router.api import (
    DhcpEntry,
    PublicState,
    RouterNotFound,
    RouterSpec,
    RouterState,
    RouterStatus,
    RuleChange,
    VmData,
)


@dataclass
class _Router:
    spec: RouterSpec
    state: RouterState = "Running"
    entries: dict[str, DhcpEntry] = field(default_factory=dict)
    vm_data: dict[str, list[tuple[str, str, str | None]]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)


class FakeRouterHost:
    def __init__(self) -> None:
        self.held: dict[str, _Router] = {}
        self.calls: list[tuple[str, Any]] = []
        self.recovered: list[str] = []

    def _get(self, name: str) -> _Router:
        try:
            return self.held[name]
        except KeyError:
            raise RouterNotFound(name) from None

    def _status(self, r: _Router) -> RouterStatus:
        return RouterStatus(name=r.spec.name, state=r.state, spec=r.spec, leases=len(r.entries))

    def start(self, spec: RouterSpec) -> RouterStatus:
        self.calls.append(("start", spec))
        r = self.held.get(spec.name)
        if r is None:
            r = self.held[spec.name] = _Router(spec)
        r.spec, r.state = spec, "Running"
        return self._status(r)

    def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        self._get(name).state = "Stopped"

    def destroy(self, name: str) -> None:
        self.calls.append(("destroy", name))
        self.held.pop(name, None)

    def status(self, name: str) -> RouterStatus:
        return self._status(self._get(name))

    def routers(self) -> list[RouterStatus]:
        return [self._status(r) for r in self.held.values()]

    def dhcp_entry(self, name: str, entry: DhcpEntry, *, remove: bool = False) -> None:
        self.calls.append(("dhcp_entry", (name, entry, remove)))
        r = self._get(name)
        for mac, old in list(r.entries.items()):
            if mac == entry.mac or old.ip == entry.ip:
                del r.entries[mac]
        if not remove:
            r.entries[entry.mac] = entry

    def vm_data(self, name: str, ip: str, data: VmData) -> None:
        self.calls.append(("vm_data", (name, ip, list(data))))
        r = self._get(name)
        if data:
            r.vm_data[ip] = list(data)
        else:
            r.vm_data.pop(ip, None)

    def save_password(self, name: str, ip: str, password: str) -> None:
        self.calls.append(("save_password", (name, ip)))
        self._get(name).passwords[ip] = password

    def apply(self, name: str, change: RuleChange) -> PublicState:
        self.calls.append(("apply", (name, change)))
        self._get(name)
        return PublicState(addresses=change.addresses)

    def public_state(self, name: str) -> PublicState:
        self._get(name)
        return PublicState()

    def recover(self) -> list[str]:
        self.recovered = [n for n, r in self.held.items() if r.state == "Running"]
        return self.recovered
