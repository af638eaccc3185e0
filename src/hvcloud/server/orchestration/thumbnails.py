"""VM thumbnails: a running VM's screen as a PNG, through the agent's ``GetVmThumbnailCommand``.

Same access rules as a console (:mod:`hvcloud.server.orchestration.consoles`). The size bounds are
the drivers' own (``hvcloud.hosttypes``), so a request the driver would refuse is refused here with a
431 instead.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.hosttypes import THUMBNAIL_MAX_SIDE, THUMBNAIL_MIN_SIDE
from hvcloud.server import errors
from hvcloud.server.db.models import User
from hvcloud.server.orchestration.consoles import ask_agent, running_host
from hvcloud.server.orchestration.vm.access import visible_vm
from hvcloud.wire.answers import GetVmThumbnailAnswer
from hvcloud.wire.commands import GetVmThumbnailCommand

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentService

log = logs.get(__name__)

DEFAULT_WIDTH = 320
DEFAULT_HEIGHT = 240
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: a PNG of at most 1920x1920 RGBA pixels, uncompressed, plus headroom: anything larger is not ours
MAX_PNG_BYTES = THUMBNAIL_MAX_SIDE * THUMBNAIL_MAX_SIDE * 4 + 65536


@dataclass(frozen=True)
class VmThumbnail:
    vm_id: str
    width: int
    height: int
    png: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


def check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not THUMBNAIL_MIN_SIDE <= value <= THUMBNAIL_MAX_SIDE:
            raise errors.param_error(f"{name} must be between {THUMBNAIL_MIN_SIDE} and {THUMBNAIL_MAX_SIDE}")


def thumbnail(db: Session, agents: AgentService | None, caller: User, vm_id: str, width: int,
              height: int) -> VmThumbnail:
    """The screen of ``vm_id`` scaled to fit ``width`` x ``height`` (aspect kept)."""
    vm = visible_vm(db, caller, vm_id)
    check_size(width, height)
    host = running_host(vm, "take a thumbnail")
    answer = ask_agent(agents, host, GetVmThumbnailCommand(vmName=vm.instance_name, width=width, height=height),
                       "take a thumbnail")
    if not isinstance(answer, GetVmThumbnailAnswer) or not answer.image:
        raise errors.unavailable(f"Host {host.name} returned no thumbnail of VM {vm.display_name}")
    try:
        png = base64.b64decode(answer.image, validate=True) if len(answer.image) <= MAX_PNG_BYTES * 4 // 3 + 4 \
            else b""
    except (binascii.Error, ValueError):
        png = b""
    if not png.startswith(PNG_MAGIC) or len(png) > MAX_PNG_BYTES or not (0 < answer.width <= width) \
            or not (0 < answer.height <= height):
        log.warning("thumbnail_refused", vm=vm.id, host=host.id, size=len(answer.image))
        raise errors.unavailable(f"Host {host.name} returned an unusable thumbnail of VM {vm.display_name}")
    return VmThumbnail(vm_id=vm.id, width=answer.width, height=answer.height, png=png)
