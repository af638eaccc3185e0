"""Consoles end to end on libvirt, through the API: ``createConsoleEndpoint`` on the server, a real
``hvcloud console-proxy run`` process, the booted test guest's VNC server in QEMU, and Debian's
chromium running the proxy's noVNC page. The guest writes ``HVCLOUD-CONSOLE`` lines on its VGA
console at boot, so the screen the browser and the thumbnail show is the guest's own."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException
from PIL import Image

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, TokenSigner
from hvcloud.server.db.crypto import SecretBox
from hvcloud.storage import guest_image
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console
from tests.support.browser import Browser
from tests.support.console_proxy import ProxyProcess
from tests.support.libvirt_cloud import LibvirtCloud, libvirt_cloud
from tests.support.rfb_client import ConsoleRefused, first_update
from tests.support.wait import wait_for

#: a grey level above which a pixel counts as the guest's (light) text
LIGHT = 140


@dataclasses.dataclass
class ConsoleCloud:
    cloud: LibvirtCloud
    proxy: ProxyProcess
    vm: dict[str, Any]
    other_vm: dict[str, Any]

    @property
    def cs(self) -> CloudStack:
        return self.cloud.cs

    def endpoint(self) -> dict[str, Any]:
        found = self.cs.createConsoleEndpoint(virtualmachineid=self.vm["id"])["consoleendpoint"]
        assert found["success"] is True, found
        return dict(found)

    def signer(self) -> TokenSigner:
        return TokenSigner(SecretBox.from_data_dir(self.cloud.server.data_dir).derive_key(TOKEN_PURPOSE))


def websocket_url(endpoint: dict[str, Any], token: str | None = None) -> str:
    """The WebSocket URL a client builds from the endpoint's ``websocket`` fields."""
    ws = endpoint["websocket"]
    return f"ws://{ws['host']}:{ws['port']}{ws['path']}?token={token or ws['token']}"


def light_share(png: bytes) -> float:
    image = Image.open(io.BytesIO(png)).convert("L")
    pixels = list(image.getdata())
    return sum(p > LIGHT for p in pixels) / len(pixels)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, libvirt_ok: None, guest: guest_image.GuestImage,
          bridge: str) -> Iterator[ConsoleCloud]:
    base = tmp_path_factory.mktemp("lvconsole")
    with libvirt_cloud(base, guest, bridge) as cloud:
        proxy = ProxyProcess(base / "proxy", data_dir=cloud.server.data_dir)
        try:
            vm = cloud.cs.deployVirtualMachine(serviceofferingid=cloud.offering["id"], templateid=cloud.template["id"],
                                               zoneid=cloud.zone["id"])["virtualmachine"]
            wait_for("the boot marker", lambda: guest_image.BOOT_MARKER in console(cloud.console_dir,
                                                                                    vm["instancename"]),
                     BOOT_TIMEOUT, interval=0.25)
            other = cloud.cs.deployVirtualMachine(serviceofferingid=cloud.offering["id"],
                                                  templateid=cloud.template["id"],
                                                  zoneid=cloud.zone["id"])["virtualmachine"]
            yield ConsoleCloud(cloud, proxy, dict(vm), dict(other))
        finally:
            proxy.stop()


def test_a_console_endpoint_reaches_the_guests_vnc_server_once(world: ConsoleCloud) -> None:
    endpoint = world.endpoint()
    assert endpoint["url"].startswith(f"{world.proxy.base}/console?token=")
    init, update = asyncio.run(first_update(websocket_url(endpoint)))
    # QEMU names the VNC desktop after the domain: this is the VM's own screen
    assert init.name == f"QEMU ({world.vm['instancename']})"
    assert init.width >= 640 and init.height >= 400
    assert update.covered == init.width * init.height
    # VGA text: light grey (168) characters on black; the guest's lines light up part of the screen
    pixels = update.pixel_bytes[::4]
    assert 0.005 < sum(p > LIGHT for p in pixels) / len(pixels) < 0.5
    with pytest.raises(ConsoleRefused) as reused:
        asyncio.run(first_update(websocket_url(endpoint)))
    assert "already used" in str(reused.value.close_reason)
    token = endpoint["websocket"]["token"]
    assert token not in world.proxy.log()
    assert token not in world.cloud.server.log_path.read_text(errors="replace")


def test_forged_expired_and_other_vm_tokens_are_refused(world: ConsoleCloud) -> None:
    endpoint = world.endpoint()
    token = endpoint["websocket"]["token"]
    signer = world.signer()
    grant = signer.open(token)
    forged = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    expired = signer.mint(dataclasses.replace(grant, expires=time.time() - 1))
    # a token for this session row naming another running VM (only a key holder could make one):
    # the row is bound to this VM
    other_vm = signer.mint(dataclasses.replace(grant, vm_id=world.other_vm["id"]))
    reasons = {}
    for name, bad in (("forged", forged), ("expired", expired), ("other VM", other_vm)):
        with pytest.raises(ConsoleRefused) as refused:
            asyncio.run(first_update(websocket_url(endpoint, bad)))
        reasons[name] = str(refused.value.close_reason)
    assert "forged" in reasons["forged"] and "expired" in reasons["expired"], reasons
    assert "already used or unknown" in reasons["other VM"], reasons
    # none of them used up the real token
    init, _update = asyncio.run(first_update(websocket_url(endpoint)))
    assert init.name == f"QEMU ({world.vm['instancename']})"


def test_only_the_owner_and_admins_get_a_console(world: ConsoleCloud) -> None:
    cs = world.cs
    domain = cs.listDomains()["domain"][0]["id"]
    account = cs.createAccount(accounttype=0, username=f"u{uuid.uuid4().hex[:8]}", password="pw-Console-1",
                               email="u@example.org", firstname="U", lastname="Ser", domainid=domain,
                               account=f"acct{uuid.uuid4().hex[:8]}")["account"]
    user_id = account["user"][0]["id"]
    keys = cs.registerUserKeys(id=user_id)["userkeys"]
    other = CloudStack(endpoint=world.cloud.server.endpoint, key=keys["apikey"], secret=keys["secretkey"],
                       fetch_result=True, timeout=60)
    for call in (lambda: other.createConsoleEndpoint(virtualmachineid=world.vm["id"]),
                 lambda: other.getVirtualMachineThumbnail(virtualmachineid=world.vm["id"])):
        with pytest.raises(CloudStackApiException) as refused:
            call()
        assert refused.value.error["errorcode"] == 431
    assert world.endpoint()["success"] is True  # the admin


def test_the_thumbnail_is_the_guests_screen(world: ConsoleCloud) -> None:
    shot = world.cs.getVirtualMachineThumbnail(virtualmachineid=world.vm["id"], width=320, height=240)["thumbnail"]
    png = base64.b64decode(shot["image"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (shot["width"], shot["height"])
    assert image.size[0] <= 320 and image.size[1] <= 240 and (image.size[0] == 320 or image.size[1] == 240)
    # the guest's boxed HVCLOUD-CONSOLE lines: light text on a dark screen
    assert 0.005 < light_share(png) < 0.5


CONNECTED = "window.hvConsole && window.hvConsole.state !== 'connecting' && window.hvConsole.state"


def _console_state(browser: Browser, url: str) -> str | None:
    """The console page's state once it left ``connecting`` (None if it never did in 45 s)."""
    browser.open(url)
    try:
        return str(browser.wait_js("the console to connect", CONNECTED, timeout=45))
    except AssertionError:
        return None


def test_the_console_url_shows_the_guest_in_a_browser(world: ConsoleCloud, browser: Browser) -> None:
    state = _console_state(browser, world.endpoint()["url"])
    if state is None:
        # Seen once in a full suite run (not since, alone or in the suite): the page stayed
        # "connecting" for a minute. A second URL, as a user would take, must connect; what the first
        # page showed is kept as a warning so that a repeat is visible.
        first = (browser.js("return [document.readyState, window.hvConsole || null]"), browser.console_log())
        warnings.warn(f"the first console page did not connect: {first}", stacklevel=1)
        state = _console_state(browser, world.endpoint()["url"])
    assert state == "connected", (browser.js("return window.hvConsole"), browser.console_log())
    assert browser.js("return window.hvConsole.name") == f"QEMU ({world.vm['instancename']})"
    # the canvas holds the guest's text: wait until enough of it is light
    share = """
    const threshold = arguments[0];
    const canvas = document.querySelector("#screen canvas");
    if (!canvas || canvas.width < 100) { return 0; }
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let light = 0;
    for (let i = 0; i < data.length; i += 4) { if ((data[i] + data[i + 1] + data[i + 2]) / 3 > threshold) light++; }
    return light / (data.length / 4);
    """
    wait_for("the guest's text on the canvas", lambda: browser.js(share, LIGHT) > 0.005, 60, interval=0.25)
    shot = browser.screenshot("libvirt-guest-console")
    assert light_share(shot.read_bytes()) > 0.002
    browser.open("about:blank")
