"""VM consoles and thumbnails: ``createConsoleEndpoint`` (CloudStack 4.18) and hvcloud's own
``getVirtualMachineThumbnail``; the logic is in :mod:`hvcloud.server.orchestration.consoles` and
:mod:`hvcloud.server.orchestration.thumbnails`.

As CloudStack's ConsoleAccessManager, createConsoleEndpoint answers a console that cannot be had
now (VM not running, host down, no proxy) with ``success: false`` and ``details`` rather than an
error, which is what CloudStack's UI reads; a VM the caller may not see is the usual 431.
"""

from __future__ import annotations

from typing import Any

from hvcloud.hosttypes import THUMBNAIL_MAX_SIDE, THUMBNAIL_MIN_SIDE
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ObjectResult, Result
from hvcloud.server.errors import CloudError
from hvcloud.server.orchestration import consoles, thumbnails
from hvcloud.server.orchestration.vm.access import visible_vm

command = REGISTRY.command

WEBSOCKET_PATH = "/websockify"


def endpoint_body(access: consoles.ConsoleAccess) -> dict[str, Any]:
    """CreateConsoleEndpointResponse: ``success``, ``url`` and, for a VNC console, ``websocket``
    (ConsoleEndpointWebsocketResponse: token, host, port as a string, path, extra)."""
    body: dict[str, Any] = {"success": True, "url": access.url}
    if access.grant.protocol == "vnc":
        websocket = {"token": access.token, "host": access.websocket_host, "port": access.websocket_port,
                     "path": WEBSOCKET_PATH}
        if access.grant.extra is not None:
            websocket["extra"] = access.grant.extra
        body["websocket"] = websocket
    return body


@command("createConsoleEndpoint", "Create a console endpoint to connect to a VM console", admin=False, params=[
    Param("virtualmachineid", "uuid", required=True, description="ID of the VM"),
    Param("token", description="(optional) extra security token, valid when the extra validation is enabled"),
], response=("success", "details", "url", "websocket"))
def create_console_endpoint(ctx: CallContext, args: Args) -> Result:
    vm_id, extra = args.str("virtualmachineid"), args.opt_str("token")
    visible_vm(ctx.db, ctx.user, vm_id)  # a VM the caller may not see is an error, not a detail
    consoles.check_extra(ctx.state.config, extra)
    try:
        access = consoles.grant_console(ctx.db, ctx.state.config, ctx.state.box, ctx.state.agents, ctx.user,
                                        vm_id, extra, ctx.client_address)
    except CloudError as exc:
        return ObjectResult("consoleendpoint", {"success": False, "details": exc.text})
    return ObjectResult("consoleendpoint", endpoint_body(access))


@command("getVirtualMachineThumbnail", "Returns the screen of a running virtual machine as a PNG (hvcloud)",
         admin=False, params=[
             Param("virtualmachineid", "uuid", required=True, description="ID of the VM"),
             Param("width", "integer", description=f"the largest width in pixels (default "
                   f"{thumbnails.DEFAULT_WIDTH}, {THUMBNAIL_MIN_SIDE}..{THUMBNAIL_MAX_SIDE})"),
             Param("height", "integer", description=f"the largest height in pixels (default "
                   f"{thumbnails.DEFAULT_HEIGHT}); the aspect ratio is kept"),
         ], response=("virtualmachineid", "width", "height", "mimetype", "image"))
def get_vm_thumbnail(ctx: CallContext, args: Args) -> Result:
    width = args.opt_int("width")
    height = args.opt_int("height")
    shot = thumbnails.thumbnail(ctx.db, ctx.state.agents, ctx.user, args.str("virtualmachineid"),
                                thumbnails.DEFAULT_WIDTH if width is None else width,
                                thumbnails.DEFAULT_HEIGHT if height is None else height)
    return ObjectResult("thumbnail", {"virtualmachineid": shot.vm_id, "width": shot.width, "height": shot.height,
                                      "mimetype": "image/png", "image": shot.base64})
