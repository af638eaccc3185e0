"""NIC commands: VLAN and link changes (CloudStack's virtual-router logic, reference §2.5) and NIC hot-plug."""

from __future__ import annotations

from dataclasses import replace

from hvcloud.agent import router_translate, translate
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.agent.handlers import router
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


def _instance(name: str | None, command: str) -> str:
    if not name:
        raise translate.TranslationError(f"{command} names no VM (instanceName)")
    return translate.vm_name(name)


@handles(C.PlugNicCommand, A.PlugNicAnswer, vm=lambda c: c.instanceName)
def plug_nic(ctx: HostContext, cmd: C.PlugNicCommand) -> Answer:
    """Add the NIC to the VM, live when it runs; a NIC with that MAC already there is success, as
    CloudStack's KVM agent answers."""
    name = _instance(cmd.instanceName, "PlugNicCommand")
    if cmd.vmType == router_translate.ROUTER_TYPE or router.is_router_name(ctx, name):
        return A.PlugNicAnswer(result=False, details=f"PlugNicCommand failed: {router.NO_PUBLIC_IPS}")
    if cmd.nic is None:
        raise translate.TranslationError("PlugNicCommand carries no NIC")
    mac = translate.normalise_mac(cmd.nic.mac)
    current = ctx.driver.list_nics(name)
    if any(n.mac.lower() == mac for n in current):
        return A.PlugNicAnswer(details=f"VM {name} already has NIC {mac}")
    free = max((n.device_id for n in current), default=-1) + 1
    spec = translate.nic_spec(cmd.nic, free)
    if any(n.device_id == spec.device_id for n in current):
        spec = replace(spec, device_id=free)
    info = ctx.driver.plug_nic(name, spec)
    return A.PlugNicAnswer(details=f"NIC {info.mac} plugged into VM {name} as device {info.device_id}")


@handles(C.UnPlugNicCommand, A.UnPlugNicAnswer, vm=lambda c: c.instanceName)
def unplug_nic(ctx: HostContext, cmd: C.UnPlugNicCommand) -> Answer:
    """Remove the NIC with the command's MAC; a NIC that is not there is already unplugged."""
    name = _instance(cmd.instanceName, "UnPlugNicCommand")
    if cmd.nic is None:
        raise translate.TranslationError("UnPlugNicCommand carries no NIC")
    mac = translate.normalise_mac(cmd.nic.mac)
    if not any(n.mac.lower() == mac for n in ctx.driver.list_nics(name)):
        return A.UnPlugNicAnswer(details=f"VM {name} has no NIC {mac}")
    ctx.driver.unplug_nic(name, mac)
    return A.UnPlugNicAnswer(details=f"NIC {mac} unplugged from VM {name}")
