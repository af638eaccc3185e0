"""Instances in the web UI (chromium): a tenant deploys through the wizard, sees the VM Running,
stops and starts it from the list (the state changes without a reload), opens its console (a real
console proxy; the simulator serves VNC), destroys it; sees no other account's VM and no operator
columns; an API refusal is shown. The operator sees every account's instances with their hosts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.console_proxy import ProxyProcess
from tests.support.ui import TENANT_PASSWORD, Ui, UiCloud
from tests.support.wait import wait_for

PASSWORD = TENANT_PASSWORD


@pytest.fixture(scope="module")
def proxy(cloud: UiCloud) -> Iterator[ProxyProcess]:
    made = ProxyProcess(cloud.cloud.base / "proxy", data_dir=cloud.cloud.server.data_dir)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def offering(cloud: UiCloud) -> dict[str, Any]:
    cs = cloud.cloud.cs
    # tenants deploy the zone's template: make it public
    cs.updateTemplatePermissions(id=cloud.cloud.template["id"], ispublic=True)
    return dict(cs.createServiceOffering(name="small", displaytext="small", cpunumber=1, cpuspeed=500,
                                         memory=256)["serviceoffering"])


def _tenant(cloud: UiCloud) -> str:
    return cloud.tenant().name


def _state(cloud: UiCloud, vm_id: str) -> str:
    return str(cloud.cloud.cs.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0]["state"])


def _row_state(ui: Ui, name: str, state: str) -> None:
    wait_for(f"{name} {state} in the list", lambda: any(name in r and state in r for r in ui.rows()),
             timeout=120, interval=0.2)


def test_a_tenant_deploys_stops_starts_opens_the_console_and_destroys(
        ui: Ui, cloud: UiCloud, offering: dict[str, Any], proxy: ProxyProcess) -> None:
    cs = cloud.cloud.cs
    others = cs.deployVirtualMachine(serviceofferingid=offering["id"], templateid=cloud.cloud.template["id"],
                                     zoneid=cloud.cloud.zone["id"], name="admins-own")["virtualmachine"]
    tenant = _tenant(cloud)
    ui.login(tenant, PASSWORD)

    # the wizard
    ui.go("deploy")
    ui.wait_text("2. Source")
    ui.fill("Compute offering", "small (1 vCPU, 256 MB)")
    ui.fill("Template", "tiny")
    ui.fill("User data", "#cloud-config\nhostname: web1\n")
    ui.fill("Name", "web1")
    ui.screenshot("deploy-wizard")
    ui.click("Deploy")
    ui.browser.wait_js("the instance's page (or an error)", "location.hash.startsWith('#/instance/') ||"
                       " !document.querySelector('form.deploy .form-error')?.hidden", timeout=120)
    failed = ui.browser.js("return document.querySelector('form.deploy .form-error')?.innerText")
    assert ui.browser.js("return location.hash.startsWith('#/instance/')"), (failed, ui.api_calls()[-4:])
    vm_id = ui.browser.js("return decodeURIComponent(location.hash.split('/')[2]);")
    ui.settled()
    ui.wait_text("Network interfaces")
    try:
        ui.browser.wait_js("the screen", "document.querySelector('.vm-screen img, .vm-screen .error')", timeout=60)
    except AssertionError:
        raise AssertionError((ui.text(), ui.api_calls()[-5:])) from None
    assert ui.browser.js("return document.querySelector('.vm-screen img') !== null"), ui.text()
    assert _state(cloud, vm_id) == "Running"
    labels = ui.browser.js("return [...document.querySelectorAll('dl.details dt')].map(t => t.innerText);")
    assert "Host" not in labels and "Account" not in labels and "IP addresses" in labels
    assert "web1" in ui.text() and "Running" in ui.text()
    ui.wait_text("ROOT")
    ui.screenshot("instance-detail")
    user_data = cs.getVirtualMachineUserData(virtualmachineid=vm_id)["virtualmachineuserdata"]["userdata"]
    assert user_data == "I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogd2ViMQo="

    # the list: only the tenant's VM, no operator columns; stop and start without reloading
    ui.go("instances")
    _row_state(ui, "web1", "Running")
    assert not any("admins-own" in r for r in ui.rows())
    headers = ui.browser.js("return [...document.querySelectorAll('.view table.list th')].map(t => t.innerText);")
    assert "Host" not in headers and "Account" not in headers and "IP addresses" in headers
    ui.screenshot("instances-list")
    ui.browser.js("window.hvNoReload = true;")
    ui.click("Stop", within=ui.row("web1"))
    ui.fill("Force stop", True)
    ui.submit("Stop")
    _row_state(ui, "web1", "Stopped")
    ui.click("Start", within=ui.row("web1"))
    _row_state(ui, "web1", "Running")

    # the console: a new window on the proxy's page, which reaches the simulated VM's VNC server
    main = ui.driver.current_window_handle
    before = set(ui.driver.window_handles)
    ui.click("Console", within=ui.row("web1"))
    new = wait_for("the console window", lambda: set(ui.driver.window_handles) - before, timeout=30, interval=0.2)
    ui.driver.switch_to.window(new.pop())
    try:
        wait_for("the proxy page", lambda: ui.driver.current_url.startswith(f"{proxy.base}/console?token="),
                 timeout=30, interval=0.2)
        state = ui.browser.wait_js("the console", "window.hvConsole && window.hvConsole.state !== 'connecting'"
                                   " && window.hvConsole.state", timeout=60)
        assert state == "connected", ui.browser.js("return window.hvConsole")
    finally:
        ui.driver.close()
        ui.driver.switch_to.window(main)
    assert ui.browser.js("return window.hvNoReload === true;")  # the list changed states in place

    # where the browser blocks the window, the page offers the console as a link instead
    ui.browser.js("window.open = () => null;")
    ui.click("Console", within=ui.row("web1"))
    offered = ui.dialog().find_element("link text", "Open the console")
    assert offered.get_attribute("href").startswith(f"{proxy.base}/console?token=")
    assert offered.get_attribute("rel") == "noopener noreferrer"
    ui.click("Close")
    ui.browser.wait_js("the dialog to close", "document.querySelector('dialog[open]') === null")

    # an API refusal is shown: the reboot confirmation is open while the VM stops behind the page's back
    ui.go("instance", vm_id)
    ui.wait_text("Network interfaces")
    ui.click("Reboot")
    ui.dialog()
    cs.stopVirtualMachine(id=vm_id)
    wait_for("the VM stopped", lambda: _state(cloud, vm_id) == "Stopped", timeout=60)
    ui.clear_toasts()
    ui.click("Reboot", within=ui.dialog())
    assert "Reboot web1 failed" in ui.toast("error")
    assert [c["errorcode"] for c in ui.refused_calls()] == [431]

    # destroy (from the instance's page, which now shows it Stopped)
    ui.go("instance", vm_id)
    ui.wait_text("Start")
    ui.click("Destroy")
    ui.fill("Expunge at once", True)
    ui.submit("Destroy")
    ui.toast("ok")
    wait_for("the VM gone", lambda: not cs.listVirtualMachines(id=vm_id, listall=True).get("virtualmachine"),
             timeout=120)
    ui.go("instances")
    ui.wait_text("No instances yet")
    assert [c["errorcode"] for c in ui.refused_calls()] == [431]
    # script errors only: the refused call's HTTP 431 and the proxy page's missing favicon are network lines
    errors = [e for e in ui.browser.console_log() if e.get("level") == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors
    cs.destroyVirtualMachine(id=others["id"], expunge=True)


def test_the_operator_sees_every_account_with_hosts(ui: Ui, cloud: UiCloud, offering: dict[str, Any]) -> None:
    cs = cloud.cloud.cs
    tenant = _tenant(cloud)
    account = cs.listAccounts(name=tenant)["account"][0]
    vm = cs.deployVirtualMachine(serviceofferingid=offering["id"], templateid=cloud.cloud.template["id"],
                                 zoneid=cloud.cloud.zone["id"], name="tenants-vm", account=tenant,
                                 domainid=account["domainid"])["virtualmachine"]
    ui.login("admin", cloud.admin_password)
    ui.go("instances")
    row = ui.row("tenants-vm")
    assert tenant in row.text and vm["hostname"] in row.text
    ui.click("Destroy", within=row)
    ui.submit("Destroy")
    _row_state(ui, "tenants-vm", "Destroyed")
    ui.click("Recover", within=ui.row("tenants-vm"))
    _row_state(ui, "tenants-vm", "Stopped")
    assert not ui.refused_calls()
