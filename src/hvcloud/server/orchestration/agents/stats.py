"""Counters of the AgentManager's parts, read by tests, the bench and the failover test plugin."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ManagerStats:
    pings: int = 0
    #: GetVmStatsCommand answers collected
    vm_stats: int = 0
    connects: int = 0
    failures: int = 0
    batches: int = 0
    power_changes: int = 0
    ticks: int = 0
    claimed: int = 0
    released: int = 0
    remote_sends: int = 0
