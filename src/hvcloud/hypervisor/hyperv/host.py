"""The Hyper-V driver's host part: host facts and statistics, the local disk pool and the VMConnect
(RDP) console endpoint.
"""

from __future__ import annotations

from hvcloud import logs
from hvcloud.hosttypes import HostNic, PoolStats
from hvcloud.hypervisor.driver import (
    ConsoleEndpoint,
    DriverError,
    HostInfo,
    HostStats,
)
from hvcloud.hypervisor.hyperv.session import (
    Part,
    WmiSession,
)

log = logs.get(__name__)

RDP_PORT = 2179


class HostOps(Part):
    """Host information (os-win: hostutils) and the console endpoint."""

    def __init__(self, session: WmiSession, *, console_host: str | None,
                 dom0_min_memory_bytes: int) -> None:
        super().__init__(session)
        self._console_host = console_host
        self._dom0_min = dom0_min_memory_bytes

    def host_info(self) -> HostInfo:
        cs = self._cimv2.query("Win32_ComputerSystem")
        os_ = self._cimv2.query("Win32_OperatingSystem")
        cpus = self._cimv2.query("Win32_Processor")
        if not cs or not os_ or not cpus:
            raise DriverError("Win32 host information is missing")
        version = ".".join(str(os_[0]["Version"]).split(".")[:2])
        nics = tuple(
            HostNic(name=str(n["Description"]), ip=str((n["IPAddress"] or [""])[0]),
                    netmask=str((n["IPSubnet"] or [""])[0]), mac=str(n["MACAddress"]).lower())
            for n in self._cimv2.query("Win32_NetworkAdapterConfiguration", {"IPEnabled": True}))
        return HostInfo(
            hostname=str(cs[0]["DNSHostName"] or cs[0]["Name"]), hypervisor_type="Hyperv",
            hypervisor_version=version, cpu_sockets=len(cpus),
            cpus=sum(int(c["NumberOfCores"]) for c in cpus),
            cpu_mhz=int(cpus[0]["MaxClockSpeed"]),
            memory_bytes=int(os_[0]["TotalVisibleMemorySize"]) * 1024, nics=nics,
            dom0_min_memory_bytes=self._dom0_min, console_port=self._console_port())

    def host_stats(self) -> HostStats:
        os_ = self._cimv2.query("Win32_OperatingSystem")[0]
        total = self._cimv2.query("Win32_PerfFormattedData_Counters_ProcessorInformation",
                                  {"Name": "_Total"})
        idle = float(total[0]["PercentIdleTime"]) if total else 100.0
        return HostStats(cpu_utilization=max(0.0, 100.0 - idle),
                         total_memory_kb=int(os_["TotalVisibleMemorySize"]),
                         free_memory_kb=int(os_["FreePhysicalMemory"]))

    def local_pool(self) -> PoolStats | None:
        settings = self._conn.query("Msvm_VirtualSystemManagementServiceSettingData")
        if not settings:
            return None
        path = str(settings[0]["DefaultVirtualHardDiskPath"] or "")
        if len(path) < 2 or path[1] != ":":
            return None
        disks = self._cimv2.query("Win32_LogicalDisk", {"DeviceID": path[:2].upper()})
        if not disks:
            return None
        return PoolStats(path=path, capacity_bytes=int(disks[0]["Size"]),
                         available_bytes=int(disks[0]["FreeSpace"]))

    def console(self, name: str) -> ConsoleEndpoint:
        vm = self._vm(name)
        host = self._console_host or self.host_info().hostname
        return ConsoleEndpoint(protocol="rdp", host=host, port=self._console_port(),
                               instance_id=str(vm["Name"]))

    def _console_port(self) -> int:
        """The VMConnect (RDP) listener port: ``Msvm_TerminalServiceSettingData.ListenerPort``,
        which an administrator can change from the default 2179."""
        found = self._conn.query("Msvm_TerminalServiceSettingData")
        port = int(found[0]["ListenerPort"] or 0) if found else 0
        return port if 0 < port < 65536 else RDP_PORT

