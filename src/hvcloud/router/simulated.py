"""The simulator's routers: :class:`~hvcloud.router.api.RouterHost` in memory.

It validates exactly as the namespace runtime does (the same :mod:`hvcloud.router.validation` and
:class:`~hvcloud.router.book.RouterBook`) and answers what a guest would get (a lease, a metadata
URL, a password request), so the simulator's hosts behave like real ones for the management
server. Cheap: a router is a few dicts, thousands fit in one process. With ``state_dir`` each router
is saved as one JSON file on every change, and :meth:`SimulatedRouterHost.recover` after a restart
brings back the routers that ran (their "services" are the only thing a restart loses).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvcloud.atomic_file import load_json, save_json
from hvcloud.router import metadata, passwords, validation
from hvcloud.router.api import (
    DhcpEntry,
    InvalidRouterRequest,
    PublicState,
    RouterError,
    RouterNotFound,
    RouterSpec,
    RouterStatus,
    RuleChange,
    VmData,
)
from hvcloud.router.book import RouterBook
from hvcloud.router.public import PublicBook, merge
from hvcloud.router.validation import VmFiles


@dataclass
class _Router:
    book: RouterBook
    vm: dict[str, VmFiles] = field(default_factory=dict)
    passwords: passwords.MemoryPasswords = field(default_factory=passwords.MemoryPasswords)
    #: the simulated dnsmasq/metadata processes run (lost on a restart, brought back by recover)
    services: bool = False
    #: how often the simulated dnsmasq re-read its files / was restarted
    reloads: int = 0
    restarts: int = 0
    #: the public side (addresses and rules), validated as the namespace runtime does
    public: PublicBook = field(default_factory=PublicBook)
    #: how many rule changes were applied (each one configuration load on a real router)
    rule_loads: int = 0

    def to_json(self) -> dict[str, Any]:
        out = {**self.book.to_json(), "vm": {ip: metadata.files_to_json(f) for ip, f in self.vm.items()},
               "passwords": dict(self.passwords.by_ip)}
        if not self.public.empty():
            out["public"] = self.public.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> _Router:
        router = cls(RouterBook.from_json(data))
        for ip, files in (data.get("vm") or {}).items():
            router.vm[validation.address_in(router.book.spec, ip)] = metadata.files_from_json(files)
        for ip, pw in (data.get("passwords") or {}).items():
            router.passwords.save(validation.address_in(router.book.spec, ip), validation.password(pw))
        router.public = PublicBook.from_json(router.book.spec, data.get("public"))
        return router


class SimulatedRouterHost:
    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._routers: dict[str, _Router] = {}
        self._lock = threading.RLock()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            for path in sorted(state_dir.glob("*.json")):
                try:
                    router = _Router.from_json(load_json(path, {}))
                except (RouterError, InvalidRouterRequest, AttributeError) as exc:
                    raise RouterError(f"simulated router state {path.name} is unreadable: {exc}") from exc
                self._routers[router.book.spec.name] = router

    def _save(self, router: _Router) -> None:
        if self.state_dir is not None:
            save_json(self.state_dir / f"{router.book.spec.name}.json", router.to_json(), fsync=False)

    def _get(self, name: str) -> _Router:
        router = self._routers.get(name)
        if router is None:
            raise RouterNotFound(name)
        return router

    def _status(self, router: _Router) -> RouterStatus:
        status = self._base_status(router)
        if router.rule_loads or not router.public.empty():
            status.details.update(public_addresses=str(len(router.public.addresses)),
                                  rules=str(router.public.rules()), rule_loads=str(router.rule_loads))
        return status

    def _base_status(self, router: _Router) -> RouterStatus:
        return RouterStatus(name=router.book.spec.name, state="Running" if router.book.running else "Stopped",
                            spec=router.book.spec, leases=len(router.book.entries),
                            details={"services": "up" if router.services else "down",
                                     "reloads": str(router.reloads), "restarts": str(router.restarts)})

    # -- RouterHost ----------------------------------------------------------------------------

    def start(self, spec: RouterSpec) -> RouterStatus:
        spec = validation.spec(spec)
        with self._lock:
            router = self._routers.get(spec.name)
            if router is None:
                router = self._routers[spec.name] = _Router(RouterBook(spec))
            elif router.book.spec != spec:
                dropped = router.book.reconfigure(spec)
                for e in dropped:
                    router.vm.pop(e.ip, None)
                router.services = False
            router.book.running = True
            if not router.services:
                router.services = True
                router.restarts += 1
            self._save(router)
            return self._status(router)

    def stop(self, name: str) -> None:
        validation.router_name(name)
        with self._lock:
            router = self._routers.get(name)
            if router is not None:
                router.book.running = False
                router.services = False
                self._save(router)

    def destroy(self, name: str) -> None:
        validation.router_name(name)
        with self._lock:
            self._routers.pop(name, None)
            if self.state_dir is not None:
                (self.state_dir / f"{name}.json").unlink(missing_ok=True)

    def status(self, name: str) -> RouterStatus:
        with self._lock:
            return self._status(self._get(name))

    def routers(self) -> list[RouterStatus]:
        with self._lock:
            return [self._status(r) for _, r in sorted(self._routers.items())]

    def dhcp_entry(self, name: str, entry: DhcpEntry, *, remove: bool = False) -> None:
        with self._lock:
            router = self._get(name)
            checked = validation.entry(router.book.spec, entry)
            changed = router.book.remove_entry(checked) if remove else router.book.set_entry(checked)
            if changed is not None:
                if router.services:
                    router.reloads += 1
                self._save(router)

    def vm_data(self, name: str, ip: str, data: VmData) -> None:
        with self._lock:
            router = self._get(name)
            addr = validation.address_in(router.book.spec, ip)
            files = validation.vm_data(data)
            if files.files:
                router.vm[addr] = files
            else:
                router.vm.pop(addr, None)
            self._save(router)

    def save_password(self, name: str, ip: str, password: str) -> None:
        with self._lock:
            router = self._get(name)
            router.passwords.save(validation.address_in(router.book.spec, ip), validation.password(password))
            self._save(router)

    def apply(self, name: str, change: RuleChange) -> PublicState:
        with self._lock:
            router = self._get(name)
            router.public, _ = merge(router.book.spec, router.public, change)
            router.rule_loads += 1
            self._save(router)
            return router.public.state()

    def public_state(self, name: str) -> PublicState:
        with self._lock:
            return self._get(name).public.state()

    def recover(self) -> list[str]:
        with self._lock:
            names = []
            for name, router in sorted(self._routers.items()):
                if router.book.running:
                    if not router.services:
                        router.services = True
                        router.restarts += 1
                    names.append(name)
            return names

    # -- what a guest on the segment would see -------------------------------------------------

    def lease(self, name: str, mac: str) -> DhcpEntry | None:
        """The static lease a DHCP client with ``mac`` gets (None: no answer, as dnsmasq)."""
        with self._lock:
            router = self._get(name)
            return router.book.entries.get(validation.mac(mac)) if router.services else None

    def metadata(self, name: str, ip: str, path: str) -> bytes | None:
        """The metadata service's body for a GET of ``path`` from ``ip`` (None: 404)."""
        with self._lock:
            router = self._get(name)
            files = router.vm.get(validation.ipv4(ip)) if router.services else None
            return metadata.resolve(path, files) if files is not None else None

    def password_request(self, name: str, ip: str, request: str | None) -> str:
        """The password server's reply to ``ip`` sending the ``DomU_Request`` header ``request``."""
        with self._lock:
            router = self._get(name)
            if not router.services:
                raise RouterError(f"router {name} is not running")
            reply = passwords.answer(router.passwords, validation.ipv4(ip), request)
            self._save(router)
            return reply
