"""The operator's pages in a real browser: building a zone (zone, pod, cluster, primary storage, image
store, a new simulator host) through the UI, host maintenance, the capacity charts, accounts, users and
their keys, a service offering; and a tenant who never sees (nor calls) any of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_process import AgentProcess
from tests.support.ui import TENANT_PASSWORD, Ui, UiCloud
from tests.support.wait import wait_for

ADMIN_ONLY = {"listHosts", "listZones", "listCapacity", "listPods", "listClusters", "listStoragePools",
              "listImageStores", "listRouters", "listAlerts"}


@pytest.fixture(scope="module")
def new_agent(tmp_path_factory: pytest.TempPathFactory, cloud: UiCloud) -> Iterator[AgentProcess]:
    """A second simulator agent (one host) for the admin to add through the UI."""
    agent = AgentProcess(tmp_path_factory.mktemp("agent2") / "data", hosts=1).start()
    try:
        yield agent
    finally:
        agent.stop()


def _no_console_errors(ui: Ui) -> None:
    # script errors only: an API refusal also logs its HTTP status, and refused_calls() covers those
    severe = [e for e in ui.browser.console_log() if e.get("level") == "SEVERE" and e.get("source") != "network"]
    assert not severe, severe


def _submit(ui: Ui, label: str) -> None:
    """Submit the dialog and insist it closed (an API error would keep it open, shown)."""
    ui.submit(label)
    assert not ui.driver.find_elements("css selector", "dialog[open]"), ui.dialog_error()


def _in_row(ui: Ui, row_text: str, button: str) -> None:
    ui.click(button, within=ui.row(row_text))


def test_admin_builds_a_zone_and_runs_its_host(admin_ui: Ui, cloud: UiCloud, new_agent: AgentProcess,
                                               tmp_path: Path) -> None:
    ui, cs = admin_ui, cloud.cloud.cs
    zone_name = f"uiz-{uuid.uuid4().hex[:6]}"
    ui.go("zones")
    ui.screenshot("zones")
    ui.click("Add zone")
    ui.fill("Name", zone_name)
    ui.fill("Network type", "Advanced")
    ui.fill("Public DNS", "8.8.8.8")
    ui.fill("Internal DNS", "10.0.0.1")
    ui.fill("Guest CIDR", "10.9.0.0/24")
    _submit(ui, "Add zone")
    ui.wait_text(f"Zone {zone_name}")
    zone = cs.listZones(name=zone_name)["zone"][0]
    assert zone["allocationstate"] == "Disabled" and zone["networktype"] == "Advanced"

    ui.click("Add pod")
    ui.fill("Name", "pod-ui")
    ui.fill("Gateway", "10.2.0.1")
    ui.fill("Netmask", "255.255.255.0")
    ui.fill("Start of the management IP range", "10.2.0.10")
    ui.fill("End of the management IP range", "10.2.0.50")
    _submit(ui, "Add pod")
    ui.row("pod-ui")

    ui.click("Add cluster")
    ui.fill("Pod", "pod-ui")
    ui.fill("Name", "cl-ui")
    ui.fill("Hypervisor", "Simulator")
    _submit(ui, "Add cluster")
    ui.wait_text(f"Zone {zone_name}")
    wait_for("the cluster", lambda: cs.listClusters(zoneid=zone["id"]).get("cluster"))

    (tmp_path / "primary").mkdir()
    ui.click("Add primary storage")
    ui.fill("Name", "prim-ui")
    ui.fill("Pod", "pod-ui")
    ui.fill("Cluster", "cl-ui (Simulator)")
    ui.fill("URL", f"file://{tmp_path}/primary")
    ui.screenshot("add-primary-storage")
    _submit(ui, "Add storage")
    ui.wait_text(f"Zone {zone_name}")

    (tmp_path / "secondary").mkdir()
    ui.click("Add image store")
    ui.fill("Provider", "NFS")
    ui.fill("Name", "img-ui")
    ui.fill("URL", f"file://{tmp_path}/secondary")
    _submit(ui, "Add image store")
    ui.wait_text(f"Zone {zone_name}")

    ui.click("Add host")
    ui.fill("Pod", "pod-ui")
    ui.fill("Cluster", "cl-ui (Simulator)")
    ui.fill("Agent URL", new_agent.url())
    ui.fill("Agent username", new_agent.username)
    ui.fill("Agent password", "not-the-agent-password")
    ui.submit("Add host")  # the API's refusal stays in the dialog, which stays open
    assert ui.dialog_error()
    ui.screenshot("add-host-refused")
    ui.fill("Agent password", new_agent.password)
    ui.screenshot("add-host")
    _submit(ui, "Add host")
    ui.wait_text(f"Zone {zone_name}")
    ui.click("Enable zone")
    ui.toast("ok")
    ui.wait_text("Disable zone")
    assert cs.listZones(id=zone["id"])["zone"][0]["allocationstate"] == "Enabled"
    pools = cs.listStoragePools(zoneid=zone["id"])["storagepool"]
    stores = [s for s in cs.listImageStores(zoneid=zone["id"])["imagestore"] if s.get("zoneid") == zone["id"]]
    assert [p["name"] for p in pools] == ["prim-ui"] and pools[0]["scope"] == "CLUSTER"
    assert [s["name"] for s in stores] == ["img-ui"]
    for tab in ("Clusters", "Hosts", "Primary storage", "Image stores"):
        ui.click(tab, within=ui.driver.find_element("css selector", "[role=tablist]"))
        ui.settled()
    ui.row("img-ui")
    ui.screenshot("zone-detail")

    # the host shows Up; maintenance and back
    host = cs.listHosts(zoneid=zone["id"])["host"][0]
    ui.go("hosts")
    wait_for("the new host Up", lambda: "Up" in ui.row(new_agent.address).text, timeout=60, interval=0.5)
    ui.screenshot("hosts")
    ui.clear_toasts()
    _in_row(ui, new_agent.address, "Maintenance")
    assert "is in maintenance" in ui.toast("ok")
    assert cs.listHosts(id=host["id"])["host"][0]["resourcestate"] == "Maintenance"
    wait_for("the row to show maintenance", lambda: "End maintenance" in ui.row(new_agent.address).text,
             timeout=30, interval=0.3)
    ui.clear_toasts()
    _in_row(ui, new_agent.address, "End maintenance")
    assert "left maintenance" in ui.toast("ok")
    assert cs.listHosts(id=host["id"])["host"][0]["resourcestate"] == "Enabled"
    ui.go("host", host["id"])
    ui.wait_text(f"Host {host['name']}")
    ui.screenshot("host-detail")

    # the capacity charts: one per zone, with the zone's numbers
    ui.go("capacity")
    section = f"section.capacity-zone[data-zone='{zone['id']}']"
    ui.browser.wait_js("the zone's chart", f"document.querySelector(\"{section} svg.barchart title\") !== null")
    title = ui.browser.js(f"return document.querySelector(\"{section} svg.barchart title\").textContent;")
    assert zone_name in title
    shown = dict(ui.browser.js(
        f"return [...document.querySelectorAll(\"{section} .chart.bars tbody tr\")]"
        ".map(r => [r.cells[0].textContent, r.cells[3].textContent]);"))
    capacity = {int(c["type"]): c for c in cs.listCapacity(zoneid=zone["id"])["capacity"]}
    assert capacity[1]["capacitytotal"] > 0
    assert shown["CPU"] == f"{float(capacity[1]['percentused']):.1f}%"
    assert shown["Memory"] == f"{float(capacity[0]['percentused']):.1f}%"
    assert {"Public IPs", "Secondary storage", "Primary storage", "Primary allocated"} <= set(shown)
    assert "The server keeps no capacity history" in ui.text()
    ui.screenshot("capacity")
    for page in ("storage", "imagestores", "routers", "alerts"):
        ui.go(page)
        ui.screenshot(page)

    assert [c["command"] for c in ui.refused_calls()] == ["addHost"]  # the wrong password, above
    _no_console_errors(ui)


def test_admin_manages_accounts_users_and_offerings(admin_ui: Ui, cloud: UiCloud) -> None:
    ui, cs = admin_ui, cloud.cloud.cs
    name = f"acme{uuid.uuid4().hex[:5]}"
    ui.go("accounts")
    ui.click("Add account")
    ui.fill("Account name", name)
    ui.fill("Role", "User")
    ui.fill("Username", f"{name}-owner")
    ui.fill("Password", "Secret-pass-1")
    ui.fill("First name", "Ada")
    ui.fill("Last name", "Owner")
    _submit(ui, "Add account")
    ui.row(name)
    ui.screenshot("accounts")
    account = cs.listAccounts(name=name)["account"][0]
    assert account["accounttype"] == 0

    ui.go("users")
    ui.click("Add user")
    ui.fill("Account", account["id"])
    ui.fill("Username", f"{name}-dev")
    ui.fill("Password", "Secret-pass-2")
    ui.fill("First name", "Dev")
    ui.fill("Last name", "Eloper")
    _submit(ui, "Add user")
    ui.row(f"{name}-dev")
    user = cs.listUsers(username=f"{name}-dev")["user"][0]
    assert user["account"] == name

    _in_row(ui, f"{name}-dev", "Keys")
    ui.click("Generate keys")
    ui.browser.wait_js("the keys", "document.getElementById('keys-secret') !== null")
    shown: Any = ui.browser.js("return [document.getElementById('keys-api').value,"
                               " document.getElementById('keys-secret').value];")
    keys = cs.getUserKeys(id=user["id"])["userkeys"]
    assert shown == [keys["apikey"], keys["secretkey"]]
    ui.screenshot("user-keys")
    ui.click("Done")

    ui.go("serviceofferings")
    ui.click("Add service offering")
    ui.fill("Name", f"{name}-small")
    ui.fill("CPUs", "2")
    ui.fill("CPU speed (MHz)", "1500")
    ui.fill("Memory (MiB)", "1024")
    _submit(ui, "Add offering")
    ui.row(f"{name}-small")
    offering = cs.listServiceOfferings(name=f"{name}-small")["serviceoffering"][0]
    assert (offering["cpunumber"], offering["cpuspeed"], offering["memory"]) == (2, 1500, 1024)
    ui.screenshot("serviceofferings")
    for page in ("diskofferings", "networkofferings", "roles", "domains"):
        ui.go(page)
        ui.screenshot(page)

    assert ui.refused_calls() == []
    _no_console_errors(ui)


def test_a_tenant_never_sees_operator_pages(ui: Ui, cloud: UiCloud) -> None:
    name = cloud.tenant("ten").name
    ui.login(name, TENANT_PASSWORD)
    menu = str(ui.browser.js("return document.querySelector('nav.menu').innerText;"))
    for section in ("Infrastructure", "Accounts", "Offerings"):
        assert section.upper() not in menu.upper()
    for page in ("Hosts", "Zones", "Capacity", "Alerts", "Service offerings"):
        assert page not in menu
    for page in ("hosts", "zones", "zone", "capacity", "accounts", "users", "serviceofferings", "routers"):
        ui.go(page)
        ui.wait_text("Not available")
    ui.screenshot("tenant-not-available")
    assert ui.refused_calls() == []
    assert not ADMIN_ONLY & {c["command"] for c in ui.api_calls()}
    _no_console_errors(ui)
