"""The Hyper-V driver (WMI v2 through PyMI on Windows; a strict WMI model in tests)."""

from hvcloud.hypervisor.hyperv.driver import HyperVDriver
from hvcloud.hypervisor.hyperv.kvp import IntegrationService
from hvcloud.hypervisor.hyperv.networking import SwitchInfo

__all__ = ["HyperVDriver", "IntegrationService", "SwitchInfo"]
