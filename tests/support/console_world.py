"""A management server's database as a console proxy sees it, for console tests and benches.

``ConsoleWorld`` opens a server data directory (migrated and seeded like ``server run`` does: a
SQLite file, ``secret.key``, ``db-url``), adds a zone and VM rows, and mints console tokens the way
the server will: a signed :class:`ConsoleGrant` plus its ``console_session`` row.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, select

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, ConsoleGrant, TokenSigner
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    Account,
    ConsoleProxy,
    ConsoleSession,
    ServiceOffering,
    User,
    VMInstance,
    Zone,
    as_dict,
)
from hvcloud.server.state import ServerState


class ConsoleWorld:
    def __init__(self, data_dir: Path, db_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.state = ServerState.open(ServerConfig.build(data_dir, db_url))
        self.db_url = self.state.config.db_url
        self.key = self.state.box.derive_key(TOKEN_PURPOSE)
        self.signer = TokenSigner(self.key)
        self._numbers = iter(range(1000, 10**9))
        with self.state.sessions.begin() as db:
            self.account_id = db.scalars(select(Account.id).where(Account.name == "admin")).one()
            self.user_id = db.scalars(select(User.id).where(User.username == "admin")).one()
            self.offering_id = db.scalars(select(ServiceOffering.id).limit(1)).one()
            zone = Zone(name=f"console-{uuid.uuid4().hex[:6]}", network_type="Advanced", dns1="192.0.2.53",
                        internal_dns1="192.0.2.53")
            db.add(zone)
            db.flush()
            self.zone_id = zone.id

    def add_vm(self, state: str = "Running", name: str | None = None) -> str:
        number = next(self._numbers)
        with self.state.sessions.begin() as db:
            vm = VMInstance(name=name or f"vm{number}", display_name=name or f"vm{number}",
                            instance_name=f"i-2-{number}-VM", vm_number=number, account_id=self.account_id,
                            user_id=self.user_id, zone_id=self.zone_id, service_offering_id=self.offering_id,
                            cpu_number=1, cpu_speed=500, memory=16, state=state)
            db.add(vm)
            db.flush()
            return vm.id

    def set_vm_state(self, vm_id: str, state: str) -> None:
        with self.state.sessions.begin() as db:
            vm = db.get(VMInstance, vm_id)
            assert vm is not None
            vm.state = state

    def delete_vm(self, vm_id: str) -> None:
        with self.state.sessions.begin() as db:
            db.execute(delete(ConsoleSession).where(ConsoleSession.vm_id == vm_id))
            db.execute(delete(VMInstance).where(VMInstance.id == vm_id))

    def grant(self, vm_id: str, host: str, port: int, password: str | None = None,
              protocol: Literal["vnc", "rdp"] = "vnc", ttl: float = 120.0, extra: str | None = None,
              instance_id: str | None = None, record: bool = True) -> tuple[str, ConsoleGrant]:
        """A token and its grant; ``record`` writes the ``console_session`` row as the server does."""
        now = time.time()
        with self.state.sessions() as db:
            vm = db.get(VMInstance, vm_id)
            vm_name = vm.name if vm is not None else "gone"
        grant = ConsoleGrant(token_id=uuid.uuid4().hex, vm_id=vm_id, vm_name=vm_name, account_id=self.account_id,
                             protocol=protocol, host=host, port=port, issued=now, expires=now + ttl,
                             instance_id=instance_id, extra=extra, vnc_password=password)
        if record:
            with self.state.sessions.begin() as db:
                db.add(ConsoleSession(token_id=grant.token_id, vm_id=vm_id, account_id=self.account_id,
                                      user_id=self.user_id, protocol=protocol, client_address="192.0.2.1",
                                      expires=datetime.fromtimestamp(grant.expires, UTC)))
        return self.signer.mint(grant), grant

    def expire(self, token_id: str) -> None:
        """Move a recorded session's expiry into the past (the token itself may still be valid)."""
        with self.state.sessions.begin() as db:
            row = db.scalars(select(ConsoleSession).where(ConsoleSession.token_id == token_id)).one()
            row.expires = datetime.now(UTC) - timedelta(seconds=5)

    def session(self, token_id: str) -> dict[str, Any] | None:
        with self.state.sessions() as db:
            row = db.scalars(select(ConsoleSession).where(ConsoleSession.token_id == token_id)).one_or_none()
            return as_dict(row) if row is not None else None

    def proxies(self) -> list[dict[str, Any]]:
        with self.state.sessions() as db:
            return [as_dict(r) for r in db.scalars(select(ConsoleProxy))]

    def close(self) -> None:
        self.state.close()
