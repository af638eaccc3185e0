"""The Hyper-V driver's networking: virtual switches, NIC ports and their switch connections,
access VLANs and bandwidth limits (port feature settings).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DriverError,
    InvalidVmState,
    NicInfo,
    NicSpec,
    NotSupported,
    VmState,
)
from hvcloud.hypervisor.hyperv import port_acls
from hvcloud.hypervisor.hyperv.connection import WmiObject
from hvcloud.hypervisor.hyperv.errors import WmiNotFound
from hvcloud.hypervisor.hyperv.session import Part
from hvcloud.network.security_groups import NicPolicy
from hvcloud.network.sg_policy import check_policy

log = logs.get(__name__)

SYNTHETIC_NIC = "Microsoft:Hyper-V:Synthetic Ethernet Port"
EMULATED_NIC = "Microsoft:Hyper-V:Emulated Ethernet Port"
ETHERNET_CONNECTION = "Microsoft:Hyper-V:Ethernet Connection"

_NIC_CLASS = {"synthetic": ("Msvm_SyntheticEthernetPortSettingData", SYNTHETIC_NIC),
              "emulated": ("Msvm_EmulatedEthernetPortSettingData", EMULATED_NIC)}
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$")


@dataclass(frozen=True)
class SwitchInfo:
    name: str
    kind: Literal["external", "internal", "private"]
    id: str
    adapter: str | None = None


def mac_hex(mac: str) -> str:
    if not _MAC.match(mac):
        raise DriverError(f"not a MAC address: {mac!r}")
    return re.sub(r"[:-]", "", mac).upper()


def mac_colons(hex12: str) -> str:
    h = hex12.lower()
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


VXLAN_REFUSED = ("Hyper-V NICs join VLANs on the virtual switch port; VXLAN segments (vxlan://) are not "
                 "supported on Hyper-V hosts: give the zone's Hyper-V hosts VLAN isolation")


def refuse_vxlan(nic: NicSpec) -> None:
    if nic.vxlan is not None:
        raise NotSupported(f"NIC {nic.mac} is on VXLAN {nic.vxlan}: {VXLAN_REFUSED}")


class NetworkOps(Part):
    """Switches, ports, VLANs and bandwidth (os-win: networkutils)."""

    def read_nics(self, resources: list[WmiObject]) -> list[tuple[NicInfo, Literal["synthetic",
                                                                                   "emulated"]]]:
        ports = [r for r in resources if r.class_name in (
            "Msvm_SyntheticEthernetPortSettingData", "Msvm_EmulatedEthernetPortSettingData")]
        allocs = {str(a["Parent"] or "").lower(): a for a in resources
                  if a.class_name == "Msvm_EthernetPortAllocationSettingData"}
        out: list[tuple[NicInfo, Literal["synthetic", "emulated"]]] = []
        for index, port in enumerate(ports):
            name = str(port["ElementName"] or "")
            device_id = int(name[3:]) if re.fullmatch(r"nic\d{1,4}", name) else index
            alloc = allocs.get(port.path.lower())
            network, vlan, enabled = None, None, False
            if alloc is not None:
                enabled = alloc["EnabledState"] in (None, 2)
                network = self._switch_name(alloc)
                vlan = self._vlan_of(alloc)
            model: Literal["synthetic", "emulated"] = (
                "synthetic" if port.class_name == "Msvm_SyntheticEthernetPortSettingData"
                else "emulated")
            out.append((NicInfo(mac=mac_colons(str(port["Address"] or "0" * 12)),
                                device_id=device_id, network=network, vlan=vlan,
                                enabled=enabled), model))
        return sorted(out, key=lambda pair: pair[0].device_id)

    def _switch_name(self, alloc: WmiObject) -> str | None:
        for path in alloc["HostResource"] or []:
            try:
                return str(self._conn.get(path)["ElementName"])
            except WmiNotFound:
                return None
        return None

    def _vlan_setting(self, alloc: WmiObject) -> WmiObject | None:
        found = self._conn.associators(alloc, assoc_class="Msvm_EthernetPortSettingDataComponent",
                                       result_class="Msvm_EthernetSwitchPortVlanSettingData")
        return found[0] if found else None

    def _vlan_of(self, alloc: WmiObject) -> int | None:
        sd = self._vlan_setting(alloc)
        if sd is None or sd["OperationMode"] != 1:
            return None
        return int(sd["AccessVlanId"]) or None

    def _switch(self, network: str | None) -> WmiObject | None:
        if network is not None:
            found = self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": network})
            if not found:
                raise DriverError(f"virtual switch {network!r} not found")
            return found[0]
        for info in self.list_switches():
            if info.kind == "external":
                return self._conn.query("Msvm_VirtualEthernetSwitch", {"Name": info.id})[0]
        return None

    def add_port(self, vm: WmiObject, vssd: WmiObject, nic: NicSpec) -> None:
        refuse_vxlan(nic)
        class_name, subtype = _NIC_CLASS[nic.model]
        port = self._default(class_name, subtype)
        port["ElementName"] = f"nic{nic.device_id}"
        port["Address"] = mac_hex(nic.mac)
        port["StaticMacAddress"] = True
        if nic.model == "synthetic":
            port["VirtualSystemIdentifiers"] = ["{" + str(uuid.uuid4()).upper() + "}"]
        port_path = self._add_resource(vssd, port, f"add NIC {nic.mac} to {vm['ElementName']}")
        switch = self._switch(nic.network)
        if switch is None:
            return
        alloc_path = self._connect(vssd, port_path, switch, nic.enabled)
        alloc = self._conn.get(alloc_path)
        if nic.security_groups:
            # the VM is off while its NICs are added: the port is protected before the guest runs
            self._set_acls(alloc, NicPolicy(mac=nic.mac.lower(), ips=nic.ips, ingress=(), egress=(), seq=0), -1)
        if nic.vlan is not None:
            self._set_vlan(alloc, nic.vlan)
        if nic.rate_mbps:
            bw = self._conn.new_instance("Msvm_EthernetSwitchPortBandwidthSettingData")
            bw["Limit"] = nic.rate_mbps * 1_000_000
            self._call(self._vsms(), "AddFeatureSettings", f"limit NIC {nic.mac}",
                       AffectedConfiguration=alloc.path, FeatureSettings=[self._conn.embed(bw)])

    def _connect(self, vssd: WmiObject, port_path: str, switch: WmiObject, enabled: bool) -> str:
        alloc = self._default("Msvm_EthernetPortAllocationSettingData", ETHERNET_CONNECTION)
        alloc["Parent"] = port_path
        alloc["HostResource"] = [switch.path]
        alloc["EnabledState"] = 2 if enabled else 3
        return self._add_resource(vssd, alloc, f"connect a NIC to {switch['ElementName']}")

    def _set_vlan(self, alloc: WmiObject, vlan: int | None) -> None:
        """Set or clear the port's access VLAN.

        A host refuses ``ModifyFeatureSettings`` on a port's VLAN setting (os-win therefore removes
        the old setting and adds a new one), so a change is a remove followed by an add.
        """
        if vlan is not None and not 1 <= vlan <= 4094:
            raise DriverError(f"VLAN {vlan} is outside 1-4094")
        current = self._vlan_setting(alloc)
        if current is not None:
            if vlan is not None and current["OperationMode"] == 1 and \
                    current["AccessVlanId"] == vlan:
                return
            self._call(self._vsms(), "RemoveFeatureSettings", "remove VLAN",
                       FeatureSettings=[current.path])
            log.info("vlan_removed", port=alloc["InstanceID"], vlan=current["AccessVlanId"])
        if vlan is None:
            return
        sd = self._conn.new_instance("Msvm_EthernetSwitchPortVlanSettingData")
        sd["OperationMode"] = 1
        sd["AccessVlanId"] = vlan
        self._call(self._vsms(), "AddFeatureSettings", f"set VLAN {vlan}",
                   AffectedConfiguration=alloc.path, FeatureSettings=[self._conn.embed(sd)])
        log.info("vlan_set", port=alloc["InstanceID"], vlan=vlan)

    # ---------------------------------------------------------------- security groups (port ACLs)

    def _acls(self, alloc: WmiObject) -> list[WmiObject]:
        return self._conn.associators(alloc, assoc_class="Msvm_EthernetPortSettingDataComponent",
                                      result_class=port_acls.ACL_CLASS)

    def _set_acls(self, alloc: WmiObject, policy: NicPolicy, seq: int) -> bool:
        """Replace the port's generation of security-group ACLs (see :mod:`.port_acls`); False
        when the port holds a newer one."""
        existing = self._acls(alloc)
        props = [{k: acl[k] for k in ("Name", "Weight")} for acl in existing]
        current = [acl for acl in existing if port_acls.seq_of(acl["Name"]) is not None]
        in_force = max((port_acls.seq_of(acl["Name"]) or 0 for acl in current), default=None)
        if in_force is not None and seq < in_force:
            return False
        old_band = port_acls.band_of(props)
        band = 0 if old_band is None else 1 - old_band
        new = port_acls.weighted(port_acls.plan(policy), band, f"hvsg:{seq}")
        if not any(acl["Name"] == port_acls.BASE_NAME for acl in existing):
            new = port_acls.base_acls() + new
        texts = []
        for item in new:
            obj = self._conn.new_instance(port_acls.ACL_CLASS)
            for key, value in item.items():
                obj[key] = value
            texts.append(self._conn.embed(obj))
        self._call(self._vsms(), "AddFeatureSettings", f"security groups on port {alloc['InstanceID']}",
                   AffectedConfiguration=alloc.path, FeatureSettings=texts)
        if current:
            self._call(self._vsms(), "RemoveFeatureSettings", "remove the previous security groups",
                       FeatureSettings=[acl.path for acl in current])
        log.info("sg_acls_set", port=alloc["InstanceID"], seq=seq, acls=len(new), removed=len(current))
        return True

    def apply_security_groups(self, name: str, policy: NicPolicy) -> None:
        check_policy(policy)
        vm = self._vm(name)
        resources = self._resources(self._vssd(vm))
        port = self._port_by_mac(resources, policy.mac)
        alloc = next((r for r in resources if r.class_name == "Msvm_EthernetPortAllocationSettingData"
                      and str(r["Parent"] or "").lower() == port.path.lower()), None)
        if alloc is None:
            raise DeviceNotFound(f"NIC {policy.mac} of {name} is not connected to a switch port")
        self._set_acls(alloc, policy, policy.seq)

    def security_acls(self, name: str, mac: str) -> list[dict[str, object]]:
        """Hyper-V extra (tests, operators): the port's security-group ACLs as property maps."""
        vm = self._vm(name)
        resources = self._resources(self._vssd(vm))
        port = self._port_by_mac(resources, mac)
        for r in resources:
            if r.class_name == "Msvm_EthernetPortAllocationSettingData" and \
                    str(r["Parent"] or "").lower() == port.path.lower():
                keys = ("Name", "Direction", "Action", "Protocol", "LocalIPAddress", "RemoteIPAddress",
                        "LocalPort", "RemotePort", "Weight", "Stateful")
                return [{k: acl[k] for k in keys} for acl in self._acls(r)]
        return []

    def list_nics(self, name: str) -> list[NicInfo]:
        vm = self._vm(name)
        return [n for n, _ in self.read_nics(self._resources(self._vssd(vm)))]

    def _port_by_mac(self, resources: list[WmiObject], mac: str) -> WmiObject:
        wanted = mac_hex(mac)
        for r in resources:
            if r.class_name in ("Msvm_SyntheticEthernetPortSettingData",
                                "Msvm_EmulatedEthernetPortSettingData") and \
                    str(r["Address"] or "").upper() == wanted:
                return r
        raise DeviceNotFound(f"no NIC with MAC {mac}")

    def update_nic(self, name: str, mac: str, *, vlan: int | Literal["keep"] | None = "keep",
                   network: str | Literal["keep"] | None = "keep", enabled: bool | None = None
                   ) -> NicInfo:
        vm = self._vm(name)
        vssd = self._vssd(vm)
        resources = self._resources(vssd)
        port = self._port_by_mac(resources, mac)
        alloc = next((r for r in resources if r.class_name == "Msvm_EthernetPortAllocationSettingData"
                      and str(r["Parent"] or "").lower() == port.path.lower()), None)
        if alloc is None and (network != "keep" or enabled or vlan not in ("keep", None)):
            switch = self._switch(None if network == "keep" else network)
            if switch is None:
                raise DriverError("no virtual switch to connect the NIC to")
            alloc = self._conn.get(self._connect(vssd, port.path, switch,
                                                 True if enabled is None else enabled))
        elif alloc is not None and (network != "keep" or enabled is not None):
            if network != "keep":
                switch = self._switch(network)
                if switch is None:
                    raise DriverError("no virtual switch to connect the NIC to")
                alloc["HostResource"] = [switch.path]
            if enabled is not None:
                alloc["EnabledState"] = 2 if enabled else 3
            self._call(self._vsms(), "ModifyResourceSettings", f"update NIC {mac}",
                       ResourceSettings=[self._conn.embed(alloc)])
        if vlan != "keep" and alloc is not None:
            self._set_vlan(alloc, vlan)
        for info in self.list_nics(name):
            if info.mac == mac_colons(mac_hex(mac)):
                return info
        raise DeviceNotFound(f"no NIC with MAC {mac}")

    def add_nic(self, name: str, nic: NicSpec) -> NicInfo:
        """Hyper-V extra: add a NIC (generation 1 VMs must be off)."""
        refuse_vxlan(nic)
        vm = self._vm(name)
        if self._state(vm) != VmState.STOPPED:
            raise InvalidVmState("NICs can be added to a generation 1 VM only while it is off")
        self.add_port(vm, self._vssd(vm), nic)
        return next(i for i in self.list_nics(name) if i.mac == mac_colons(mac_hex(nic.mac)))

    def remove_nic(self, name: str, mac: str) -> None:
        """Hyper-V extra: remove a NIC and its switch connection."""
        vm = self._vm(name)
        port = self._port_by_mac(self._resources(self._vssd(vm)), mac)
        self._call(self._vsms(), "RemoveResourceSettings", f"remove NIC {mac}",
                   ResourceSettings=[port.path])

    def list_switches(self) -> list[SwitchInfo]:
        out = []
        for switch in self._conn.query("Msvm_VirtualEthernetSwitch"):
            kind: Literal["external", "internal", "private"] = "private"
            adapter = None
            for sd in self._conn.associators(switch, assoc_class="Msvm_SettingsDefineState",
                                             result_class="Msvm_VirtualEthernetSwitchSettingData"):
                for alloc in self._resources(sd, "Msvm_EthernetPortAllocationSettingData"):
                    for path in alloc["HostResource"] or []:
                        try:
                            target = self._conn.get(path)
                        except WmiNotFound:
                            continue
                        if target.class_name == "Msvm_ExternalEthernetPort":
                            kind, adapter = "external", str(target["ElementName"])
                        elif target.class_name == "Msvm_ComputerSystem" and kind == "private":
                            kind = "internal"
            out.append(SwitchInfo(name=str(switch["ElementName"]), kind=kind,
                                  id=str(switch["Name"]), adapter=adapter))
        return out

    def create_switch(self, name: str, kind: Literal["external", "internal", "private"],
                      adapter: str | None = None) -> SwitchInfo:
        if self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": name}):
            raise DriverError(f"virtual switch {name!r} already exists")
        ports: list[str] = []
        if kind != "private":
            if kind == "external":
                where = {"ElementName": adapter} if adapter else {"IsBound": False}
                found = self._conn.query("Msvm_ExternalEthernetPort", where)
                if not found:
                    raise DriverError(f"no free physical adapter {adapter or ''}".strip())
                target = found[0]
            else:
                host = str(self._cimv2.query("Win32_ComputerSystem")[0]["Name"])
                target = self._conn.query("Msvm_ComputerSystem", {"Name": host})[0]
            alloc = self._default("Msvm_EthernetPortAllocationSettingData", ETHERNET_CONNECTION)
            alloc["HostResource"] = [target.path]
            alloc["ElementName"] = f"{name} port"
            ports.append(self._conn.embed(alloc))
        settings = self._conn.new_instance("Msvm_VirtualEthernetSwitchSettingData")
        settings["ElementName"] = name
        self._call(self._service("Msvm_VirtualEthernetSwitchManagementService"), "DefineSystem",
                   f"create switch {name}", SystemSettings=self._conn.embed(settings),
                   ResourceSettings=ports)
        return next(s for s in self.list_switches() if s.name == name)

    def delete_switch(self, name: str) -> None:
        for switch in self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": name}):
            self._call(self._service("Msvm_VirtualEthernetSwitchManagementService"),
                       "DestroySystem", f"delete switch {name}", AffectedSystem=switch.path)

