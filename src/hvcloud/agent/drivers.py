"""The wiring of each driver into the agent: the hosts it serves and any endpoints it adds.

This is the one agent module that names concrete drivers, and it imports each only when that
driver is asked for; the agent core reaches drivers through :func:`build_hosts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hvcloud import logs
from hvcloud.agent.app import ControlEndpoint
from hvcloud.agent.config import AgentConfig, ConfigError
from hvcloud.agent.context import HostContext
from hvcloud.hypervisor.driver import HypervisorUnavailable
from hvcloud.router.api import RouterHost

log = logs.get(__name__)


def build_hosts(config: AgentConfig) -> list[HostContext]:
    """One HostContext per served host, with its driver and storage backend."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.driver == "simulator":
        from hvcloud.agent.simulator_wiring import simulated_hosts

        return simulated_hosts(config)
    if config.driver == "libvirt":
        return [libvirt_host(config)]
    if config.driver == "hyperv":
        return [hyperv_host(config)]
    raise ConfigError(f"unknown driver {config.driver}")


def control_endpoints(config: AgentConfig) -> Sequence[ControlEndpoint]:
    """The endpoints the configured driver adds beside the command protocol."""
    if config.driver == "simulator":
        from hvcloud.agent.simulator_wiring import CONTROL

        return CONTROL
    return ()


def libvirt_host(config: AgentConfig) -> HostContext:
    """This Linux host through libvirtd; files through the local storage backend."""
    try:
        from hvcloud.hypervisor.libvirt.config import LibvirtConfig
        from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
    except ImportError as exc:
        raise HypervisorUnavailable(f"libvirt-python is not installed: {exc}") from None
    from hvcloud.storage.local import LocalStorageBackend

    data = config.data_dir
    local_pool = config.local_pool_dir or data / "local-pool"
    driver = LibvirtDriver(LibvirtConfig(
        uri=config.libvirt_uri,
        domain_type=None if config.libvirt_domain_type == "auto" else config.libvirt_domain_type,
        vnc_listen=config.vnc_listen,
        console_log_dir=str(data / "console"),
        default_bridge=config.default_bridge,
        local_pool_dir=str(local_pool),
        nic_rate_limits=config.nic_rate_limits,
    ))
    storage = LocalStorageBackend(data / "storage", policy=config.path_policy(local_pool))
    return HostContext(config.host_address, driver, storage, data, stop_timeout=config.stop_timeout,
                       routers=namespace_routers(data / "routers"), default_trunk=config.default_bridge)


def namespace_routers(state_dir: Path) -> RouterHost | None:
    """The virtual routers of a Linux host: one network namespace each, on the host's bridges.
    None (the host then refuses router commands) when the runtime is not installed."""
    try:
        from hvcloud.router.namespace import NamespaceRouterHost  # type: ignore[import-not-found]
    except ImportError as exc:
        log.warning("no router runtime", reason=str(exc))
        return None
    routers: RouterHost = NamespaceRouterHost(state_dir, bridges=None)
    return routers


def hyperv_host(config: AgentConfig) -> HostContext:
    """This Windows host through WMI v2 (PyMI). Files go through the Hyper-V storage backend:
    local and SMB pools addressed by Windows paths, VHD/VHDX disks, differencing clones, and VHDX
    creation through Hyper-V's image management service."""
    from hvcloud.hypervisor.hyperv.driver import HyperVDriver
    from hvcloud.storage.hyperv import HyperVStorageBackend

    try:
        driver = HyperVDriver.connect()
    except ImportError as exc:
        raise HypervisorUnavailable(f"the Hyper-V driver needs Windows and PyMI: {exc}") from None
    data = config.data_dir
    local = driver.local_pool()
    storage = HyperVStorageBackend(data / "storage", disks=driver.image_management(),
                                   policy=config.path_policy(Path(local.path) if local else None))
    return HostContext(config.host_address, driver, storage, data, stop_timeout=config.stop_timeout)
