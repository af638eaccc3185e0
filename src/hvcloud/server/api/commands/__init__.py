"""API commands, one module per area; importing a module registers its commands."""

from __future__ import annotations

import importlib

MODULES = ("meta", "accounts", "domains", "zones", "storage", "catalog", "events", "hosts", "capacity", "templates",
           "offerings", "vms", "volumes", "management",
           "limits", "keys", "routers", "physical_networks", "networks", "nics",
           "security_groups", "public_ips", "firewall", "load_balancers", "consoles", "configuration", "roles", "tags",
           "affinity_groups", "instance_groups", "metrics", "projects", "usage")


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
