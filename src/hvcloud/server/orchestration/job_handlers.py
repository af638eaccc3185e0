"""Every job handler orchestration provides: importing a manager registers its handlers by name.

The server calls :func:`load` before its job engine starts, so the engine finds each handler a
queued job names, whatever else the process imported.
"""

from __future__ import annotations

import importlib

MODULES = ("vm.manager", "volumes", "accounts", "domains", "template_jobs", "host_jobs", "resources.storage_pools",
           "vm_credentials", "networks.routers", "networks.networks", "networks.nic_jobs",
           "networks.sg_sync", "networks.rule_jobs")


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"hvcloud.server.orchestration.{name}")
