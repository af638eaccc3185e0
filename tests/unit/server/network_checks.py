"""What the network API tests share: a refused call changes nothing and names the field at fault."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hvcloud.server.db.models import Account, Nic, ServiceOffering, VMInstance
from hvcloud.server.state import ServerState
from tests.fuzz.api_fuzz import db_fingerprint, settle
from tests.support.server_api import Caller


def refused(state: ServerState, caller: Caller, command: str, /, *, code: int = 431, field: str | None = None,
            **params: Any) -> str:
    """Call ``command``, expect ``code``, the field named in the text, and no row written; returns the text."""
    assert settle(state.engine)
    before = db_fingerprint(state.engine)
    status, body = caller.call(command, **params)
    assert status == code, (command, params, body)
    assert body["errorcode"] == code
    text = str(body["errortext"])
    if field is not None:
        assert field in text, (field, text)
    assert db_fingerprint(state.engine) == before, f"{command} {params} wrote rows although refused"
    return text


def hold_address(state: ServerState, admin: Caller, zone: dict[str, str], network_id: str, address: str) -> str:
    """A NIC row of a (stopped) VM holding ``address`` on the network, as the NIC manager writes it."""
    with state.sessions.begin() as db:
        account = db.scalars(select(Account).where(Account.name == "admin")).one()
        offering = db.scalars(select(ServiceOffering)).first()
        assert offering is not None
        user_id = account.users[0].id
        number = 900 + len(list(db.scalars(select(VMInstance.id))))
        vm = VMInstance(name=f"holder-{number}", display_name="holder", instance_name=f"i-1-{number}-VM",
                        vm_number=number, account_id=account.id, user_id=user_id, zone_id=zone["zoneid"],
                        service_offering_id=offering.id, cpu_number=1, cpu_speed=500, memory=512)
        db.add(vm)
        db.flush()
        nic = Nic(vm_id=vm.id, network_id=network_id, mac_address=f"02:00:01:00:{number // 256:02x}:{number % 256:02x}",
                  ip4_address=address, ip_key=f"{network_id}/{address}", state="Reserved")
        db.add(nic)
        db.flush()
        return nic.id
