"""What the console and thumbnail tests share: a stand-in for the AgentManager's API-side protocol
(``AgentService``, the seam a test may fill: no agent process in tests/unit), a zone with one Up
host, and VMs put Running on it."""

from __future__ import annotations

import io
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from PIL import Image

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    ConsoleProxy,
    Host,
    VMInstance,
    utcnow,
)
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.state import ServerState
from hvcloud.wire.answers import GetVmThumbnailAnswer, GetVncPortAnswer
from hvcloud.wire.base import Answer, Command
from hvcloud.wire.commands import GetVmThumbnailCommand, GetVncPortCommand
from tests.support.server_api import Caller, build_zone, ready_template

T = TypeVar("T")
HOST_IP = "10.1.0.5"
VNC_PORT = 5901


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class FakeAgents:
    """Answers GetVncPortCommand and GetVmThumbnailCommand as an agent would; ``answer`` may be
    replaced per test (an Answer, or an exception to raise)."""

    config: ServerConfig
    sent: list[tuple[str, Command]] = field(default_factory=list)
    vnc: Answer | Exception = field(default_factory=lambda: GetVncPortAnswer(address="0.0.0.0", port=VNC_PORT))
    thumb: Callable[[GetVmThumbnailCommand], Answer] | Exception | None = None

    def send_sync(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        self.sent.append((host_id, command))
        if isinstance(command, GetVncPortCommand):
            reply: Any = self.vnc
        elif isinstance(command, GetVmThumbnailCommand):
            reply = self.thumb if self.thumb is not None else self._thumbnail
            reply = reply if isinstance(reply, Exception) else reply(command)
        else:
            raise AssertionError(f"unexpected command {type(command).__name__}")
        if isinstance(reply, Exception):
            raise reply
        return reply  # type: ignore[no-any-return]

    @staticmethod
    def _thumbnail(cmd: GetVmThumbnailCommand) -> Answer:
        width, height = cmd.width, cmd.width * 3 // 4
        if height > cmd.height:
            width, height = cmd.height * 4 // 3, cmd.height
        import base64

        return GetVmThumbnailAnswer(image=base64.b64encode(png_of(width, height)).decode(), width=width,
                                    height=height)

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        raise AssertionError("not used by the console code")


def make_cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"], "plain")
        host = Host(name="h1", guid="g1", zone_id=ids["zoneid"], pod_id=ids["podid"], cluster_id=ids["clusterid"],
                    status=HOST_UP, hypervisor="Simulator", url=f"http://{HOST_IP}", private_ip=HOST_IP,
                    cpu_number=4, cpu_speed=1000, memory_total=8 << 30)
        db.add(host)
        db.flush()
        template_id, host_id = template.id, host.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template_id, "offering": offering, "host": host_id}


def running_vm(caller: Caller, state: ServerState, cloud: dict[str, Any], vm_state: str = "Running") -> str:
    """A VM deployed by ``caller`` (not started), then written ``vm_state`` on the cloud's host."""
    _, body = caller.call("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                          zoneid=cloud["zoneid"], startvm="false")
    job = caller.wait(body["jobid"])
    assert job["jobstatus"] == 1, job
    vm_id: str = job["jobresult"]["virtualmachine"]["id"]
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, vm_id)
        assert vm is not None
        vm.state = vm_state
        vm.host_id = cloud["host"] if vm_state == "Running" else None
    return vm_id


def add_proxy(state: ServerState, url: str, sessions: int = 0, age_seconds: float = 0) -> str:
    with state.sessions.begin() as db:
        row = ConsoleProxy(name=url, url=url, active_sessions=sessions,
                           last_seen=utcnow() - timedelta(seconds=age_seconds))
        db.add(row)
        db.flush()
        return row.id
