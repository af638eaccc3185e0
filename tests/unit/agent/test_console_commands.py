"""GetVncPortCommand and GetVmThumbnailCommand through the agent's HTTP app (simulator), and the
address a wildcard VNC listener is answered with."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hvcloud.agent.context import HostContext
from hvcloud.agent.handlers import console
from hvcloud.hosttypes import THUMBNAIL_MAX_SIDE
from hvcloud.hypervisor.driver import ConsoleEndpoint
from hvcloud.storage.simulated import SimulatedStorage
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from tests.support.agent_harness import AgentHarness
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"
VNC = C.GetVncPortCommand.FQCN
THUMB = C.GetVmThumbnailCommand.FQCN


def thumb_body(**fields: Any) -> dict[str, Any]:
    body = sample("GetVmThumbnailCommand")
    body.update(fields)
    return body


def test_vnc_port_is_a_live_listener_on_the_host_address(agent: AgentHarness) -> None:
    agent.answer(START, sample("StartCommand"))
    cls, fields = agent.answer(VNC, sample("GetVncPortCommand"))
    assert cls == "com.cloud.agent.api.GetVncPortAnswer"
    assert fields["result"] is True and fields["address"] == "127.0.0.1"
    assert "contextMap" not in fields  # the one answer without it, as CloudStack's Hyper-V agent sends it
    with socket.create_connection((fields["address"], fields["port"]), timeout=10) as s:
        assert s.recv(12) == b"RFB 003.008\n"
    agent.answer(STOP, {"vmName": "i-2-17-VM", "wait": 0, "contextMap": {}})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fields["port"]), timeout=10).close()


def test_vnc_port_of_a_vm_that_is_not_running_fails_in_band(agent: AgentHarness) -> None:
    _, fields = agent.answer(VNC, sample("GetVncPortCommand"))
    assert fields["result"] is False and "not found" in fields["details"]


def test_thumbnail_of_a_running_vm(agent: AgentHarness) -> None:
    agent.answer(START, sample("StartCommand"))
    cls, fields = agent.answer(THUMB, thumb_body(width=320, height=200))
    assert cls == "org.hvcloud.agent.api.GetVmThumbnailAnswer"
    assert fields["result"] is True and (fields["width"], fields["height"]) == (267, 200)
    image = Image.open(io.BytesIO(base64.b64decode(fields["image"], validate=True)))
    assert image.format == "PNG" and image.size == (267, 200)
    assert len(set(image.convert("RGB").getdata())) > 16


@pytest.mark.parametrize("width,height", [(0, 240), (320, 15), (THUMBNAIL_MAX_SIDE + 1, 240), (-5, -5),
                                          (320, 2**31 - 1)])
def test_thumbnail_sizes_out_of_bounds_get_a_clear_error(agent: AgentHarness, width: int, height: int) -> None:
    agent.answer(START, sample("StartCommand"))
    _, fields = agent.answer(THUMB, thumb_body(width=width, height=height))
    assert fields["result"] is False
    assert "not within 16..1920" in fields["details"] and "image" not in fields


def test_thumbnail_of_a_stopped_or_missing_vm_fails_in_band(agent: AgentHarness) -> None:
    _, missing = agent.answer(THUMB, thumb_body())
    assert missing["result"] is False and "not found" in missing["details"]
    agent.answer(START, sample("StartCommand"))
    agent.host.driver.stop_vm("i-2-17-VM", timeout=1)
    _, stopped = agent.answer(THUMB, thumb_body())
    assert stopped["result"] is False and "Stopped" in stopped["details"]


@pytest.mark.parametrize("body,why", [
    ({"width": 320, "height": 240}, "vmName: Field required"),
    ({"vmName": "i-2-17-VM", "width": "wide", "height": 240}, "width: Input should be a valid integer"),
    ({"vmName": "i-2-17-VM", "width": 2**40, "height": 240}, "width: Input should be less than or equal"),
])
def test_malformed_thumbnail_commands_are_refused(agent: AgentHarness, body: dict[str, Any], why: str) -> None:
    agent.answer(START, sample("StartCommand"))
    cls, fields = agent.answer(THUMB, body)
    assert cls == A.GetVmThumbnailAnswer.FQCN
    assert fields["result"] is False and why in fields["details"] and "image" not in fields


class _WildcardDriver:
    """A driver whose VNC listens on every address, as libvirt with vnc_listen 0.0.0.0."""

    def console(self, name: str) -> ConsoleEndpoint:
        return ConsoleEndpoint(protocol="vnc", host="0.0.0.0", port=5901, password="pw")


def test_a_wildcard_listener_is_answered_with_the_host_address(tmp_path: Path) -> None:
    ctx = HostContext("10.1.2.3", _WildcardDriver(), SimulatedStorage(tmp_path, None), tmp_path)  # type: ignore[arg-type]
    answer = console.vnc_port(ctx, C.GetVncPortCommand(id=1, name="i-2-17-VM"))
    assert isinstance(answer, A.GetVncPortAnswer)
    assert (answer.address, answer.port) == ("10.1.2.3", 5901)
    assert console.reachable_address(ctx, "192.168.5.5") == "192.168.5.5"
    assert console.reachable_address(ctx, "::") == "10.1.2.3"
