"""The Hyper-V driver's guest-facing parts: KVP items both ways, guest IP addresses, integration
services and the screen thumbnail.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hvcloud import logs
from hvcloud.hypervisor import thumbnails
from hvcloud.hypervisor.driver import (
    DriverError,
    InvalidVmState,
    NotSupported,
    Thumbnail,
    VmState,
)
from hvcloud.hypervisor.hyperv import cimxml, jobs, rgb565
from hvcloud.hypervisor.hyperv.connection import WmiObject
from hvcloud.hypervisor.hyperv.networking import mac_colons
from hvcloud.hypervisor.hyperv.session import Part

log = logs.get(__name__)

USERDATA_KVP = "cloudstack-vm-userdata"
USER_DATA_KVP = "hvcloud-user-data"
KVP_NAME_MAX, KVP_DATA_MAX, KVP_ITEMS_MAX = 256, 1024, 1024
#: the largest thumbnail Hyper-V renders (GetVirtualSystemThumbnailImage)
THUMBNAIL_LIMIT = (1024, 768)

_IC_STATUS = {2: "OK", 3: "Degraded", 6: "Error", 7: "Non-Recoverable Error", 12: "No Contact",
              13: "Lost Communication"}


@dataclass(frozen=True)
class IntegrationService:
    name: str
    enabled: bool
    status: str


def parse_kvp_items(items: Sequence[Any] | None) -> dict[str, str]:
    """KVP items (embedded ``Msvm_KvpExchangeDataItem`` text, guest-controlled) → dict.

    Malformed or oversized items are skipped, not fatal: a guest must not be able to break the
    agent by publishing junk.
    """
    out: dict[str, str] = {}
    for text in list(items or [])[:KVP_ITEMS_MAX]:
        try:
            class_name, props = cimxml.load(str(text))
        except cimxml.CimXmlError as exc:
            log.warning("skipping a malformed KVP item", reason=str(exc))
            continue
        name, data = props.get("Name"), props.get("Data")
        if class_name != "Msvm_KvpExchangeDataItem" or not isinstance(name, str) or \
                not isinstance(data, str) or len(name) > KVP_NAME_MAX or len(data) > 4 * KVP_DATA_MAX:
            continue
        out[name] = data
    return out


class KvpOps(Part):
    """KVP exchange, guest IPs, integration services, thumbnails (os-win: vmutils' KVP and
    integration-service parts)."""

    def _kvp_component(self, vm: WmiObject) -> WmiObject | None:
        """The VM's Msvm_KvpExchangeComponent, or None: like every Msvm_*Component device it
        exists only while the VM's worker process runs (not while the VM is off or saved)."""
        found = self._conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                       result_class="Msvm_KvpExchangeComponent")
        return found[0] if found else None

    def _host_kvp_settings(self, vm: WmiObject) -> WmiObject:
        """The VM's Msvm_KvpExchangeComponentSettingData, a part of its realized settings.

        Reached from the Msvm_VirtualSystemSettingData through
        Msvm_VirtualSystemSettingDataComponent, so it is there while the VM is off too (a deploy
        writes user data before the first start); the component's Msvm_ElementSettingData hop
        needs a running VM.
        """
        found = self._conn.associators(
            self._vssd(vm), assoc_class="Msvm_VirtualSystemSettingDataComponent",
            result_class="Msvm_KvpExchangeComponentSettingData")
        if not found:
            raise NotSupported("the VM has no KVP exchange settings")
        return found[0]

    def host_kvp(self, name: str) -> dict[str, str]:
        """Hyper-V extra: the items the host has given the guest."""
        return parse_kvp_items(self._host_kvp_settings(self._vm(name))["HostExchangeItems"])

    def guest_kvp(self, name: str, *, intrinsic: bool = False) -> dict[str, str]:
        """Hyper-V extra: items the guest published (or the intrinsic ones Hyper-V collects);
        none while the VM is not running."""
        comp = self._kvp_component(self._vm(name))
        if comp is None:
            return {}
        prop = "GuestIntrinsicExchangeItems" if intrinsic else "GuestExchangeItems"
        return parse_kvp_items(comp[prop])

    def write_kvp(self, name: str, key: str, value: str) -> None:
        """Hyper-V extra: add or replace a host-to-guest KVP item."""
        if not key or len(key) > KVP_NAME_MAX or len(value) > KVP_DATA_MAX or \
                "\x00" in key + value:
            raise DriverError(f"KVP names are 1-{KVP_NAME_MAX} and values up to {KVP_DATA_MAX} "
                              "characters, without NUL")
        vm = self._vm(name)
        item = self._conn.new_instance("Msvm_KvpExchangeDataItem")
        item["Name"] = key
        item["Data"] = value
        item["Source"] = 0
        method = "ModifyKvpItems" if key in self.host_kvp(name) else "AddKvpItems"
        self._call(self._vsms(), method, f"write KVP {key} of {name}", TargetSystem=vm.path,
                   DataItems=[self._conn.embed(item)])

    def delete_kvp(self, name: str, key: str) -> None:
        if key not in self.host_kvp(name):
            return
        vm = self._vm(name)
        item = self._conn.new_instance("Msvm_KvpExchangeDataItem")
        item["Name"] = key
        item["Data"] = ""
        item["Source"] = 0
        self._call(self._vsms(), "RemoveKvpItems", f"remove KVP {key} of {name}",
                   TargetSystem=vm.path, DataItems=[self._conn.embed(item)])

    def guest_ips(self, name: str) -> dict[str, list[str]]:
        """Hyper-V extra: guest IP addresses per NIC MAC (needs the guest's KVP daemon)."""
        vm = self._vm(name)
        out: dict[str, list[str]] = {}
        for r in self._resources(self._vssd(vm)):
            if r.class_name not in ("Msvm_SyntheticEthernetPortSettingData",
                                    "Msvm_EmulatedEthernetPortSettingData"):
                continue
            ips: list[str] = []
            for cfg in self._conn.associators(r, assoc_class="Msvm_SettingDataComponent",
                                              result_class="Msvm_GuestNetworkAdapterConfiguration"):
                for addr in cfg["IPAddresses"] or []:
                    try:
                        ips.append(str(ipaddress.ip_address(str(addr))))
                    except ValueError:
                        log.warning("ignoring a bad guest address", address=repr(addr))
            out[mac_colons(str(r["Address"] or "0" * 12))] = ips
        return out

    def integration_services(self, name: str) -> list[IntegrationService]:
        """Hyper-V extra: heartbeat, shutdown and KVP integration service status."""
        vm = self._vm(name)
        out = []
        for class_name, label in (("Msvm_HeartbeatComponent", "Heartbeat"),
                                  ("Msvm_ShutdownComponent", "Shutdown"),
                                  ("Msvm_KvpExchangeComponent", "Key-Value Pair Exchange")):
            for comp in self._conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                               result_class=class_name):
                status = list(comp["OperationalStatus"] or [0])
                out.append(IntegrationService(name=label, enabled=comp["EnabledState"] == 2,
                                              status=_IC_STATUS.get(int(status[0]), "Unknown")))
        return out

    def screenshot(self, name: str, width: int, height: int) -> Thumbnail:
        """The running VM's screen through ``GetVirtualSystemThumbnailImage``. Hyper-V stretches the
        screen to the size asked and renders at most 1024x768, so the 4:3 size that fits
        ``width`` x ``height`` is asked for (1024x768 when that is larger, then scaled up)."""
        thumbnails.check_size(width, height)
        want = thumbnails.fit(4, 3, width, height)
        ask = want if want[0] <= THUMBNAIL_LIMIT[0] and want[1] <= THUMBNAIL_LIMIT[1] else THUMBNAIL_LIMIT
        vm = self._vm(name)
        if self._state(vm) != VmState.RUNNING:
            raise InvalidVmState(f"{name} is not running")
        out = self._conn.invoke(self._vsms(), "GetVirtualSystemThumbnailImage",
                                TargetSystem=self._vssd(vm).path, WidthPixels=ask[0],
                                HeightPixels=ask[1])
        jobs.check(self._conn, out, f"thumbnail of {name}", self._policy())
        data = bytes(out.get("ImageData") or [])
        try:
            image = rgb565.to_image(data, *ask)
        except ValueError as exc:
            raise DriverError(f"bad thumbnail from Hyper-V: {exc}") from exc
        return thumbnails.to_thumbnail(image, width, height)
