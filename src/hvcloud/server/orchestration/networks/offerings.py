"""Network offerings: what a guest network offers (services and their providers), CloudStack's rules
for which combinations are valid, and their life (create, update, delete while unused).

``services_json`` is ``{service: [providers]}``; ``details_json`` holds what CloudStack keeps in
``network_offering_details`` and its capability table: ``capabilities`` ({service: {name: value}}),
``ispersistent``, ``forvpc``, ``sortkey``, ``maxconnections``, ``supportsstrechedl2subnet``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import Network, NetworkOffering, User, utcnow
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration.networks.physical import PROVIDER_SERVICES, SECURITY_GROUP_PROVIDER, VIRTUAL_ROUTER

log = logs.get(__name__)

GUEST_TYPES = ("Isolated", "Shared", "L2")
AVAILABILITIES = ("Required", "Optional")
#: every service name CloudStack's API accepts; those no provider here gives are refused as unsupported
SERVICES = ("Vpn", "Dhcp", "Dns", "SourceNat", "PortForwarding", "Lb", "UserData", "StaticNat", "NetworkACL",
            "Firewall", "Gateway", "SecurityGroup", "Connectivity")
#: the capabilities CloudStack lets an offering choose, by service
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "SourceNat": ("SupportedSourceNatTypes", "RedundantRouter"),
    "Lb": ("SupportedLBIsolation", "ElasticLb", "InlineMode", "LbSchemes"),
    "StaticNat": ("ElasticIp", "AssociatePublicIP"),
    "Connectivity": ("StretchedL2Subnet", "PublicAccess"),
}


def canonical(value: str, choices: tuple[str, ...], name: str) -> str:
    for choice in choices:
        if choice.lower() == value.strip().lower():
            return choice
    raise errors.param_error(f"Invalid {name} {value[:32]!r}: expected one of {', '.join(choices)}")


def services_of(offering: NetworkOffering) -> dict[str, list[str]]:
    data = json.loads(offering.services_json or "{}")
    return {str(k): [str(p) for p in v] for k, v in data.items()} if isinstance(data, dict) else {}


def details_of(offering: NetworkOffering) -> dict[str, Any]:
    data = json.loads(offering.details_json or "{}")
    return data if isinstance(data, dict) else {}


def has_service(offering: NetworkOffering, service: str) -> bool:
    return service in services_of(offering)


def default_provider(service: str) -> str:
    return SECURITY_GROUP_PROVIDER if service == "SecurityGroup" else VIRTUAL_ROUTER


@dataclass
class OfferingSpec:
    name: str
    display_text: str
    guest_ip_type: str
    services: dict[str, list[str]]
    capabilities: dict[str, dict[str, str]] = field(default_factory=dict)
    specify_vlan: bool = False
    specify_ip_ranges: bool = False
    availability: str = "Optional"
    conserve_mode: bool = True
    egress_default_policy: bool = False
    network_rate: int | None = None
    tags: str | None = None
    is_persistent: bool = False
    enabled: bool = False


def build_services(supported: list[str], providers: dict[str, list[str]]) -> dict[str, list[str]]:
    """``supportedservices`` + ``serviceproviderlist`` as {service: [providers]}: every service
    known, every provider known and able to give it; a service without a provider gets
    CloudStack's default (VirtualRouter; SecurityGroupProvider for SecurityGroup)."""
    services: dict[str, list[str]] = {}
    for raw in supported:
        service = canonical(raw, SERVICES, "supportedservices")
        services[service] = []
    for raw_service, names in providers.items():
        service = canonical(raw_service, SERVICES, "serviceproviderlist")
        if service not in services:
            raise errors.param_error(f"Invalid serviceproviderlist: service {service} is not in supportedservices")
        for raw_provider in names:
            provider = canonical(raw_provider, tuple(PROVIDER_SERVICES), "serviceproviderlist")
            if provider not in services[service]:
                services[service].append(provider)
    for service, names in services.items():
        if not names:
            names.append(default_provider(service))
        for provider in names:
            if service not in PROVIDER_SERVICES[provider]:
                raise errors.param_error(f"Invalid serviceproviderlist: provider {provider} does not support "
                                         f"service {service}")
    return services


def check_rules(spec: OfferingSpec) -> None:
    """CloudStack's combination rules (ConfigurationManagerImpl.createNetworkOffering)."""
    services = spec.services
    if spec.guest_ip_type == "L2" and services:
        raise errors.param_error("Invalid supportedservices: an L2 network offering offers no services")
    if spec.guest_ip_type == "L2" and spec.specify_ip_ranges:
        raise errors.param_error("Invalid specifyipranges: an L2 network offering has no IP ranges")
    if spec.guest_ip_type == "Shared":
        if not spec.specify_vlan:
            raise errors.param_error("Invalid specifyvlan: it must be true for a Shared network offering")
        if not spec.specify_ip_ranges:
            raise errors.param_error("Invalid specifyipranges: it must be true for a Shared network offering")
        if "SourceNat" in services:
            raise errors.param_error("Invalid supportedservices: SourceNat is not supported by Shared network "
                                     "offerings")
    if spec.guest_ip_type == "Isolated":
        if "SecurityGroup" in services:
            raise errors.param_error("Invalid supportedservices: SecurityGroup is not supported by Isolated "
                                     "network offerings")
        if "SourceNat" in services and spec.specify_ip_ranges:
            raise errors.param_error("Invalid specifyipranges: an Isolated offering with SourceNat takes no IP "
                                     "ranges")
    if spec.availability == "Required" and not (spec.guest_ip_type == "Isolated" and "SourceNat" in services):
        raise errors.param_error("Invalid availability: Required is only for Isolated offerings with SourceNat")
    for service, caps in spec.capabilities.items():
        if service not in services:
            raise errors.param_error(f"Invalid servicecapabilitylist: service {service} is not in supportedservices")
        for cap in caps:
            if cap not in CAPABILITIES.get(service, ()):
                raise errors.param_error(f"Invalid servicecapabilitylist: {service} has no capability {cap[:32]}")
    if spec.network_rate is not None and spec.network_rate < 0:
        raise errors.param_error("Invalid networkrate: must be 0 or more (Mbit/s)")


def create_offering(db: Session, actor: User, spec: OfferingSpec) -> NetworkOffering:
    check_rules(spec)
    details: dict[str, Any] = {"capabilities": spec.capabilities}
    if spec.is_persistent:
        details["ispersistent"] = True
    offering = NetworkOffering(
        name=spec.name, display_text=spec.display_text, guest_ip_type=spec.guest_ip_type, traffic_type="Guest",
        state="Enabled" if spec.enabled else "Disabled", availability=spec.availability, is_default=False,
        is_system=False, specify_vlan=spec.specify_vlan, specify_ip_ranges=spec.specify_ip_ranges,
        conserve_mode=spec.conserve_mode, egress_default_policy=spec.egress_default_policy,
        network_rate=spec.network_rate, tags=spec.tags, services_json=json.dumps(spec.services, sort_keys=True),
        details_json=json.dumps(details, sort_keys=True))
    db.add(offering)
    db.flush()
    events.record(db, actor, "NETWORK.OFFERING.CREATE", f"Creating network offering {offering.name}",
                  resource_type="NetworkOffering", resource_id=offering.id)
    log.info("network_offering_created", id=offering.id, guest_type=offering.guest_ip_type)
    return offering


@dataclass(frozen=True)
class OfferingEdit:
    name: str | None = None
    display_text: str | None = None
    state: str | None = None
    availability: str | None = None
    sort_key: int | None = None
    tags: str | None = None
    max_connections: int | None = None


def update_offering(db: Session, actor: User, offering: NetworkOffering, edit: OfferingEdit) -> None:
    if offering.is_system:
        raise errors.param_error("Invalid id: system network offerings cannot be updated")
    if edit.availability is not None and edit.availability == "Required" and not (
            offering.guest_ip_type == "Isolated" and has_service(offering, "SourceNat")):
        raise errors.param_error("Invalid availability: Required is only for Isolated offerings with SourceNat")
    if edit.name is not None:
        offering.name = edit.name
    if edit.display_text is not None:
        offering.display_text = edit.display_text
    if edit.state is not None:
        offering.state = edit.state
    if edit.availability is not None:
        offering.availability = edit.availability
    if edit.tags is not None:
        offering.tags = edit.tags or None
    details = details_of(offering)
    if edit.sort_key is not None:
        details["sortkey"] = edit.sort_key
    if edit.max_connections is not None:
        if edit.max_connections < 0:
            raise errors.param_error("Invalid maxconnections: must be 0 or more")
        details["maxconnections"] = edit.max_connections
    offering.details_json = json.dumps(details, sort_keys=True)
    db.flush()
    events.record(db, actor, "NETWORK.OFFERING.EDIT", f"Updating network offering {offering.name}",
                  resource_type="NetworkOffering", resource_id=offering.id)


def delete_offering(db: Session, actor: User, offering: NetworkOffering) -> None:
    if offering.is_default or offering.is_system:
        raise errors.param_error(f"Invalid id: default network offering {offering.name} can't be deleted")
    used = db.scalar(select(func.count()).select_from(Network).where(Network.network_offering_id == offering.id,
                                                                     Network.removed.is_(None)))
    if used:
        raise errors.param_error(f"Invalid id: network offering {offering.name} is used by {used} network(s)")
    offering.removed = utcnow()
    offering.state = "Disabled"
    db.flush()
    events.record(db, actor, "NETWORK.OFFERING.DELETE", f"Deleting network offering {offering.name}",
                  resource_type="NetworkOffering", resource_id=offering.id)
