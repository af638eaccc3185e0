"""First-start data: the ROOT domain, the root admin with API keys, and guest OS types."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.crypto import SecretBox, hash_password, new_api_key
from hvcloud.server.db.models import Account, DiskOffering, Domain, OsCategory, OsType, ServiceOffering, User

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"
ACCOUNT_TYPE_USER = 0
ACCOUNT_TYPE_ADMIN = 1

GUEST_OS: dict[str, list[str]] = {
    "CentOS": ["CentOS 7", "CentOS 8"],
    "Debian": ["Debian GNU/Linux 11 (64-bit)", "Debian GNU/Linux 12 (64-bit)"],
    "Ubuntu": ["Ubuntu 20.04 LTS", "Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"],
    "RedHat": ["Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9"],
    "Windows": ["Windows Server 2016 (64-bit)", "Windows Server 2019 (64-bit)",
                "Windows Server 2022 (64-bit)", "Windows 10 (64-bit)", "Windows 11 (64-bit)"],
    "Other": ["Other Linux (64-bit)", "Other (64-bit)", "Other PV (64-bit)"],
}


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
    session.flush()
