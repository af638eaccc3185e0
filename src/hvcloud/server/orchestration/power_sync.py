"""Moved to :mod:`hvcloud.server.orchestration.vm.power_sync`; this name remains only for
``agent_manager``, which the AgentManager split (issue #14) rewrites. Delete it once nothing imports it."""

from hvcloud.server.orchestration.vm.power_sync import PowerChange as PowerChange
from hvcloud.server.orchestration.vm.power_sync import apply_report as apply_report
