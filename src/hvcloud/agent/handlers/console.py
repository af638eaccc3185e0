"""A VM's console: where its VNC (or Hyper-V's RDP) console is, and a thumbnail of its screen."""

from __future__ import annotations

import base64

from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.host_errors import InvalidRequest
from hvcloud.hypervisor import thumbnails
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer

#: listen addresses that name no address a console proxy can connect to
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}
#: CloudStack's Hyper-V agent answers this port with ``instanceId=<VM GUID>`` as the address: the
#: console proxy then reaches the VM through the host's VMConnect (RDP on 2179), not VNC
HYPERV_CONSOLE_PORT = -9


def reachable_address(ctx: HostContext, host: str) -> str:
    """The address of a console listening on ``host``: a wildcard listener (libvirt's
    ``vnc_listen`` 0.0.0.0) is reached on the host's own address, as CloudStack's KVM agent
    answers its private IP."""
    return ctx.address if host.strip() in _WILDCARDS else host


@handles(C.GetVncPortCommand, A.GetVncPortAnswer, vm=lambda c: c.name)
def vnc_port(ctx: HostContext, cmd: C.GetVncPortCommand) -> Answer:
    """As CloudStack's Hyper-V agent answers it (``HypervResourceController.GetVncPortCommand``):
    ``address`` ``instanceId=<GUID>`` and port -9 for Hyper-V's VMConnect, no ``contextMap``;
    the VNC address and port for libvirt and the simulator."""
    endpoint = ctx.driver.console(cmd.name)
    if endpoint.protocol == "rdp":
        return A.GetVncPortAnswer(address=f"instanceId={endpoint.instance_id}", port=HYPERV_CONSOLE_PORT)
    return A.GetVncPortAnswer(address=reachable_address(ctx, endpoint.host), port=endpoint.port)


@handles(C.GetVmThumbnailCommand, A.GetVmThumbnailAnswer, vm=lambda c: c.vmName)
def vm_thumbnail(ctx: HostContext, cmd: C.GetVmThumbnailCommand) -> Answer:
    """The VM's screen as a PNG scaled to fit ``width`` x ``height``, base64, with its real size."""
    thumbnails.check_size(cmd.width, cmd.height)
    if not cmd.vmName:
        raise InvalidRequest("GetVmThumbnailCommand needs vmName")
    thumb = ctx.driver.screenshot(cmd.vmName, cmd.width, cmd.height)
    return A.GetVmThumbnailAnswer(image=base64.b64encode(thumb.png).decode("ascii"),
                                  width=thumb.width, height=thumb.height)
