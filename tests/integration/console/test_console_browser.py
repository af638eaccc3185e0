"""The console page in a real browser (chromium): noVNC from the proxy, through the WebSocket
bridge, to a real QEMU VNC server; and a refusal shown to the user."""

from __future__ import annotations

from tests.support.browser import Browser
from tests.support.console_proxy import ProxyThread
from tests.support.console_world import ConsoleWorld
from tests.support.vnc_servers import VncServer

#: distinct colours in a grid of samples over the noVNC canvas
CANVAS_COLOURS = """
const canvas = document.querySelector("#screen canvas");
if (!canvas || canvas.width < 100) { return 0; }
const ctx = canvas.getContext("2d");
const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
const seen = new Set();
for (let i = 0; i < data.length; i += 4 * 97) { seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]); }
return seen.size;
"""


def test_the_console_page_shows_the_vms_screen(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                               browser: Browser) -> None:
    vm = world.add_vm(name="browser-vm")
    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
    browser.open(proxy.urls(token)["console"])
    state = browser.wait_js("the console to connect",
                            "window.hvConsole && window.hvConsole.state !== 'connecting' && window.hvConsole.state")
    assert state == "connected", (browser.js("return window.hvConsole"), browser.console_log())
    colours = browser.wait_js("QEMU's text on the canvas", f"(function() {{ {CANVAS_COLOURS} }})() > 1")
    assert colours
    assert browser.js("return window.hvConsole.name") == "QEMU"
    shot = browser.screenshot("console-connected")
    assert shot.stat().st_size > 1000
    assert proxy.active == 1
    browser.open("about:blank")


def test_a_refused_console_says_why(world: ConsoleWorld, vnc: VncServer, proxy: ProxyThread,
                                    browser: Browser) -> None:
    vm = world.add_vm()
    token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
    world.set_vm_state(vm, "Stopped")
    browser.open(proxy.urls(token)["console"])
    browser.wait_js("the console to give up", "window.hvConsole && window.hvConsole.state === 'disconnected'")
    assert browser.js("return window.hvConsole.reason") == "the VM is not running"
    assert "the VM is not running" in browser.js("return document.getElementById('status').textContent")
    browser.screenshot("console-refused")
