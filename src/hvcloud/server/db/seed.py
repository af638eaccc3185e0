"""First-start data: the ROOT domain, the root admin with API keys, guest OS types, and the default
offerings (service, disk and network offerings, the latter as CloudStack seeds them)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.crypto import SecretBox, hash_password, new_api_key
from hvcloud.server.db.models import (
    Account,
    DiskOffering,
    Domain,
    NetworkOffering,
    OsCategory,
    OsType,
    ServiceOffering,
    User,
)

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"
ACCOUNT_TYPE_USER = 0
ACCOUNT_TYPE_ADMIN = 1
#: CloudStack's DOMAIN_ADMIN: an administrator of its domain's subtree
ACCOUNT_TYPE_DOMAIN_ADMIN = 2
#: CloudStack's PROJECT: the account that owns a project's resources (no users; never listed)
ACCOUNT_TYPE_PROJECT = 5

GUEST_OS: dict[str, list[str]] = {
    "CentOS": ["CentOS 7", "CentOS 8"],
    "Debian": ["Debian GNU/Linux 11 (64-bit)", "Debian GNU/Linux 12 (64-bit)"],
    "Ubuntu": ["Ubuntu 20.04 LTS", "Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"],
    "RedHat": ["Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9"],
    "Windows": ["Windows Server 2016 (64-bit)", "Windows Server 2019 (64-bit)",
                "Windows Server 2022 (64-bit)", "Windows 10 (64-bit)", "Windows 11 (64-bit)"],
    "Other": ["Other Linux (64-bit)", "Other (64-bit)", "Other PV (64-bit)"],
}


_VR = ["VirtualRouter"]
_VR_BASIC = {"Dhcp": _VR, "Dns": _VR, "UserData": _VR}
_VR_SOURCE_NAT = {**_VR_BASIC, "Firewall": _VR, "Gateway": _VR, "Lb": _VR, "SourceNat": _VR, "StaticNat": _VR,
                  "PortForwarding": _VR, "Vpn": _VR}
#: CloudStack's default network offerings (ConfigurationServerImpl): unique name, display text, guest
#: type, availability, specifyvlan, specifyipranges, services {service: [providers]} and capabilities
DEFAULT_NETWORK_OFFERINGS: tuple[dict[str, object], ...] = (
    {"name": "DefaultSharedNetworkOfferingWithSGService", "display_text": "Offering for Shared Security group "
     "enabled networks", "guest_ip_type": "Shared", "availability": "Optional", "specify_vlan": True,
     "specify_ip_ranges": True, "services": {**_VR_BASIC, "SecurityGroup": ["SecurityGroupProvider"]}},
    {"name": "DefaultSharedNetworkOffering", "display_text": "Offering for Shared networks",
     "guest_ip_type": "Shared", "availability": "Optional", "specify_vlan": True, "specify_ip_ranges": True,
     "services": _VR_BASIC},
    {"name": "DefaultIsolatedNetworkOfferingWithSourceNatService", "display_text": "Offering for Isolated "
     "networks with Source Nat service enabled", "guest_ip_type": "Isolated", "availability": "Required",
     "specify_vlan": False, "specify_ip_ranges": False, "services": _VR_SOURCE_NAT,
     "capabilities": {"SourceNat": {"SupportedSourceNatTypes": "peraccount", "RedundantRouter": "false"},
                      "Lb": {"SupportedLBIsolation": "dedicated", "ElasticLb": "false"},
                      "StaticNat": {"ElasticIp": "false", "AssociatePublicIP": "false"}}},
    {"name": "DefaultIsolatedNetworkOffering", "display_text": "Offering for Isolated networks with no Source Nat "
     "service", "guest_ip_type": "Isolated", "availability": "Optional", "specify_vlan": True,
     "specify_ip_ranges": True, "services": _VR_BASIC},
    {"name": "DefaultL2NetworkOffering", "display_text": "Offering for L2 networks", "guest_ip_type": "L2",
     "availability": "Optional", "specify_vlan": False, "specify_ip_ranges": False, "services": {}},
    {"name": "DefaultL2NetworkOfferingVlan", "display_text": "Offering for L2 networks VLAN",
     "guest_ip_type": "L2", "availability": "Optional", "specify_vlan": True, "specify_ip_ranges": False,
     "services": {}},
)


def _seed_network_offerings(session: Session) -> None:
    """Each default network offering once, by its unique name (so a later release can add more)."""
    existing = set(session.scalars(select(NetworkOffering.unique_name).where(NetworkOffering.unique_name.is_not(None))))
    for spec in DEFAULT_NETWORK_OFFERINGS:
        name = str(spec["name"])
        if name in existing:
            continue
        session.add(NetworkOffering(
            name=name, unique_name=name, display_text=str(spec["display_text"]),
            guest_ip_type=str(spec["guest_ip_type"]), traffic_type="Guest", state="Enabled",
            availability=str(spec["availability"]), is_default=True, is_system=False,
            specify_vlan=bool(spec["specify_vlan"]), specify_ip_ranges=bool(spec["specify_ip_ranges"]),
            conserve_mode=True, egress_default_policy=False,
            services_json=json.dumps(spec["services"], sort_keys=True),
            details_json=json.dumps({"capabilities": spec.get("capabilities", {})}, sort_keys=True)))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def seed(session: Session, box: SecretBox, data_dir: Path) -> None:
    """Create what a fresh cloud needs; does nothing for rows that already exist."""
    root = session.scalar(select(Domain).where(Domain.path == "ROOT"))
    if root is None:
        root = Domain(name="ROOT", path="ROOT", level=0)
        session.add(root)
        session.flush()
    admin = session.scalar(select(User).where(User.username == ADMIN_USERNAME))
    if admin is None:
        account = Account(name=ADMIN_USERNAME, domain_id=root.id, account_type=ACCOUNT_TYPE_ADMIN)
        session.add(account)
        session.flush()
        password = secrets.token_urlsafe(18)
        admin = User(account_id=account.id, username=ADMIN_USERNAME, password_hash=hash_password(password),
                     firstname="admin", lastname="cloud", api_key=new_api_key(),
                     secret_key_enc=box.encrypt(new_api_key()))
        session.add(admin)
        _write_private(data_dir / ADMIN_PASSWORD_FILE, password)
    existing = set(session.scalars(select(OsType.description)))
    for category_name, descriptions in GUEST_OS.items():
        category = session.scalar(select(OsCategory).where(OsCategory.name == category_name))
        if category is None:
            category = OsCategory(name=category_name)
            session.add(category)
            session.flush()
        for description in descriptions:
            if description not in existing:
                session.add(OsType(category_id=category.id, description=description))
    if session.scalar(select(ServiceOffering.id).limit(1)) is None:
        session.add_all([
            ServiceOffering(name="Small Instance", display_text="Small Instance, 1 vCPU, 512 MB RAM",
                            cpu_number=1, cpu_speed=500, memory=512),
            ServiceOffering(name="Medium Instance", display_text="Medium Instance, 1 vCPU, 1 GB RAM",
                            cpu_number=1, cpu_speed=1000, memory=1024)])
    if session.scalar(select(DiskOffering.id).limit(1)) is None:
        session.add_all([
            DiskOffering(name="Small", display_text="Small Disk, 5 GB", disk_size_gb=5),
            DiskOffering(name="Medium", display_text="Medium Disk, 20 GB", disk_size_gb=20),
            DiskOffering(name="Custom", display_text="Custom Disk", disk_size_gb=0, customized=True)])
    _seed_network_offerings(session)
    session.flush()
