"""NIC commands used by CloudStack's virtual-router logic (reference §2.5)."""

from __future__ import annotations

from hvcloud.agent import translate
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.hypervisor.driver import DeviceNotFound
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer


@handles(C.GetVmConfigCommand, A.GetVmConfigAnswer, vm=lambda c: c.vmName)
def get_vm_config(ctx: HostContext, cmd: C.GetVmConfigCommand) -> Answer:
    nics = ctx.driver.list_nics(cmd.vmName)
    return A.GetVmConfigAnswer(vmName=cmd.vmName, nics=[
        A.NicDetails(macAddress=n.mac.replace(":", "").upper(), vlanid=str(n.vlan if n.vlan is not None else -1),
                     state=n.enabled) for n in nics])


def _vlan_arg(vlan: str | None) -> int | None:
    if vlan is None or vlan.strip().lower() in ("", "untagged", "-1"):
        return None
    try:
        value = int(vlan.removeprefix("vlan://"))
    except ValueError:
        raise translate.TranslationError(f"invalid VLAN {vlan!r}") from None
    if not 1 <= value <= 4094:
        raise translate.TranslationError(f"VLAN {value} out of range 1-4094")
    return value


@handles(C.ModifyVmNicConfigCommand, A.ModifyVmNicConfigAnswer, vm=lambda c: c.vmName)
def modify_vm_nic(ctx: HostContext, cmd: C.ModifyVmNicConfigCommand) -> Answer:
    """By MAC: put that NIC on ``vlan``. By position (``index`` ≥ 1, counted from 1 as the Hyper-V
    agent does): enable or disable it and move it to ``switchLableName``."""
    vlan = _vlan_arg(cmd.vlan)
    if cmd.macAddress:
        mac = translate.normalise_mac(cmd.macAddress)
        ctx.driver.update_nic(cmd.vmName, mac, vlan=vlan)
        return A.ModifyVmNicConfigAnswer(vmName=cmd.vmName)
    if cmd.index is not None and cmd.index >= 1:
        nics = ctx.driver.list_nics(cmd.vmName)
        if cmd.index > len(nics):
            raise DeviceNotFound(f"VM {cmd.vmName} has {len(nics)} NICs, no NIC {cmd.index}")
        nic = nics[cmd.index - 1]
        ctx.driver.update_nic(cmd.vmName, nic.mac, vlan=vlan,
                              network=cmd.switchLableName if cmd.switchLableName else "keep",
                              enabled=cmd.enable)
        return A.ModifyVmNicConfigAnswer(vmName=cmd.vmName)
    return A.ModifyVmNicConfigAnswer(vmName=cmd.vmName, result=False,
                                     details="ModifyVmNicConfigCommand failed: give a MAC address or an index >= 1")


@handles(C.PlugNicCommand, A.PlugNicAnswer, blocking=False)
def plug_nic(ctx: HostContext, cmd: C.PlugNicCommand) -> Answer:
    return A.PlugNicAnswer(details="NIC hot-plug is done by the management server through ModifyVmNicConfig")
