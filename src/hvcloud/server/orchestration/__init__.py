"""Managers holding the server's logic: resources, catalog, and the AgentManager boundary."""

from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    # ``power_sync`` moved into the VM package (vm/power_sync.py); agent_manager, which the
    # AgentManager split of issue #14 rewrites, still imports it from here. Delete this then.
    if name == "power_sync":
        from hvcloud.server.orchestration.vm import power_sync

        return power_sync
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
