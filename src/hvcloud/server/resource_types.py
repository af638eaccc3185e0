"""CloudStack's resource types (``Resource.ResourceType``) and its default limits.

Kept free of imports so that the settings parser and the limit service can both use it. Numbers are
the API's ``resourcetype``; names are ``resourcetypename`` and appear in CloudStack's error texts.
Memory is counted in MiB, storage in bytes; the ``max.*.primary.storage`` / ``secondary.storage``
settings are in GiB, as in CloudStack.
"""

from __future__ import annotations

USER_VM, PUBLIC_IP, VOLUME, SNAPSHOT, TEMPLATE, PROJECT, NETWORK, VPC, CPU, MEMORY = range(10)
PRIMARY_STORAGE, SECONDARY_STORAGE = 10, 11

NAMES: dict[int, str] = {
    USER_VM: "user_vm", PUBLIC_IP: "public_ip", VOLUME: "volume", SNAPSHOT: "snapshot", TEMPLATE: "template",
    PROJECT: "project", NETWORK: "network", VPC: "vpc", CPU: "cpu", MEMORY: "memory",
    PRIMARY_STORAGE: "primary_storage", SECONDARY_STORAGE: "secondary_storage",
}
BY_NAME: dict[str, int] = {name: number for number, name in NAMES.items()}

#: the setting suffix after ``max.account.`` / ``max.domain.``
SETTING_SUFFIX: dict[int, str] = {
    USER_VM: "user.vms", PUBLIC_IP: "public.ips", VOLUME: "volumes", SNAPSHOT: "snapshots",
    TEMPLATE: "templates", PROJECT: "projects", NETWORK: "networks", VPC: "vpcs", CPU: "cpus",
    MEMORY: "memory", PRIMARY_STORAGE: "primary.storage", SECONDARY_STORAGE: "secondary.storage",
}

#: CloudStack's defaults of ``max.account.*`` and ``max.domain.*`` (memory in MiB, storage in GiB)
ACCOUNT_DEFAULTS: dict[int, int] = {
    USER_VM: 20, PUBLIC_IP: 20, VOLUME: 20, SNAPSHOT: 20, TEMPLATE: 20, PROJECT: 10, NETWORK: 20, VPC: 20,
    CPU: 40, MEMORY: 40960, PRIMARY_STORAGE: 200, SECONDARY_STORAGE: 400,
}
DOMAIN_DEFAULTS: dict[int, int] = {
    USER_VM: 40, PUBLIC_IP: 40, VOLUME: 40, SNAPSHOT: 40, TEMPLATE: 40, PROJECT: 50, NETWORK: 40, VPC: 40,
    CPU: 80, MEMORY: 81920, PRIMARY_STORAGE: 400, SECONDARY_STORAGE: 800,
}

#: ``max.account.user.vms`` … → (owner kind, resource type)
LIMIT_SETTINGS: dict[str, tuple[str, int]] = {
    **{f"max.account.{suffix}": ("account", number) for number, suffix in SETTING_SUFFIX.items()},
    **{f"max.domain.{suffix}": ("domain", number) for number, suffix in SETTING_SUFFIX.items()},
}

GiB = 1024**3
UNLIMITED = -1


def setting_unit(resource_type: int) -> int:
    """Bytes per unit of a ``max.*`` setting: storage settings are in GiB, the API counts bytes."""
    return GiB if resource_type in (PRIMARY_STORAGE, SECONDARY_STORAGE) else 1
