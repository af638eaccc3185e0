"""Router rows as CloudStack's DomainRouterResponse (``listRouters`` and the router jobs)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, Domain, DomainRouter, Host, Network, UserIpAddress, Zone
from hvcloud.server.views.fields import compact

ROUTER_TEMPLATE = "SystemVM Template (hvcloud router)"


def _netmask(cidr: str | None) -> str | None:
    if not cidr:
        return None
    try:
        return str(ipaddress.ip_network(cidr, strict=False).netmask)
    except ValueError:
        return None


def _source_nat(db: Session, network_ids: list[str]) -> dict[str, str]:
    """The source NAT address of each network that holds one: its router's ``publicip``."""
    rows = db.execute(select(UserIpAddress.network_id, UserIpAddress.public_ip_address)
                      .where(UserIpAddress.network_id.in_(network_ids), UserIpAddress.source_nat.is_(True),
                             UserIpAddress.removed.is_(None))).all()
    return {str(net): str(address) for net, address in rows}


def _view(router: DomainRouter, network: Network | None, zone: Zone | None, host: Host | None,
          account: Account | None, domain: Domain | None, source_nat: str | None = None) -> dict[str, Any]:
    netmask = _netmask(network.cidr if network is not None else None)
    guest_type = network.guest_type if network is not None else None
    nic = compact({
        "id": router.id, "networkid": router.network_id, "networkname": network.name if network else None,
        "netmask": netmask, "gateway": network.gateway if network else None, "ipaddress": router.guest_ip,
        "isolationuri": network.broadcast_uri if network else None,
        "broadcasturi": network.broadcast_uri if network else None, "traffictype": "Guest", "type": guest_type,
        "isdefault": True, "macaddress": router.guest_mac, "deviceid": "0", "virtualmachineid": router.id,
    })
    return compact({
        "id": router.id, "name": router.name, "state": router.state, "zoneid": router.zone_id,
        "zonename": zone.name if zone else None, "dns1": zone.dns1 if zone else None,
        "dns2": zone.dns2 if zone else None, "networkdomain": network.network_domain if network else None,
        "gateway": network.gateway if network else None, "guestipaddress": router.guest_ip,
        "guestmacaddress": router.guest_mac, "guestnetmask": netmask, "guestnetworkid": router.network_id,
        "guestnetworkname": network.name if network else None, "hostid": router.host_id,
        "hostname": host.name if host else None, "hypervisor": host.hypervisor if host else None,
        "account": account.name if account else None, "domainid": router.domain_id,
        "domain": domain.name if domain else None, "created": router.created, "role": router.role,
        "redundantstate": router.redundant_state, "requiresupgrade": False, "version": router.version,
        "isredundantrouter": False, "templatename": ROUTER_TEMPLATE, "publicip": router.public_ip or source_nat,
        "vpcid": None, "nic": [nic],
    })


def router_view(db: Session, router: DomainRouter) -> dict[str, Any]:
    network = db.get(Network, router.network_id)
    account = db.get(Account, router.account_id)
    return _view(router, network, db.get(Zone, router.zone_id),
                 db.get(Host, router.host_id) if router.host_id else None, account,
                 db.get(Domain, router.domain_id), _source_nat(db, [router.network_id]).get(router.network_id))


def router_views(db: Session, ids: list[str]) -> list[dict[str, Any]]:
    """A page of routers in a fixed number of queries, in the order of ``ids``."""
    if not ids:
        return []
    rows = db.execute(select(DomainRouter, Network, Zone, Host, Account, Domain)
                      .join(Network, Network.id == DomainRouter.network_id)
                      .join(Zone, Zone.id == DomainRouter.zone_id)
                      .join(Account, Account.id == DomainRouter.account_id)
                      .join(Domain, Domain.id == DomainRouter.domain_id)
                      .outerjoin(Host, Host.id == DomainRouter.host_id)
                      .where(DomainRouter.id.in_(ids))).all()
    nat = _source_nat(db, sorted({r[0].network_id for r in rows}))
    by_id = {r[0].id: _view(*r, source_nat=nat.get(r[0].network_id)) for r in rows}
    return [by_id[i] for i in ids if i in by_id]
