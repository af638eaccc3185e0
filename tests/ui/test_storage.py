"""Storage, SSH keys and activity pages in a real browser, as a tenant: a volume's life (create,
attach, resize, detach, delete, and an API refusal shown), a template uploaded from a local file
with its progress bar, an ISO registered by URL, an SSH key pair's private key shown once, and the
events and jobs those actions left."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from hvcloud.storage import qemu_img
from tests.support.ui import TENANT_PASSWORD, Ui, UiCloud
from tests.support.wait import wait_for

PASSWORD = TENANT_PASSWORD


@dataclass
class Tenant:
    username: str
    client: CloudStack
    vm: dict[str, Any]


@pytest.fixture(scope="module")
def tenant(cloud: UiCloud) -> Iterator[Tenant]:
    cs = cloud.cloud.cs
    made = cloud.tenant("st")
    name, client = made.name, made.cs
    cs.updateTemplatePermissions(id=cloud.cloud.template["id"], ispublic=True)
    cs.createDiskOffering(name="custom", displaytext="custom size", customized=True)
    cs.createDiskOffering(name="small", displaytext="2 GB", disksize=2)
    offering = cs.createServiceOffering(name="tiny-ui", displaytext="tiny", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"]
    vm = client.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.cloud.template["id"],
                                     zoneid=cloud.cloud.zone["id"], name="web1")["virtualmachine"]
    assert vm["state"] == "Running"
    yield Tenant(name, client, vm)


@pytest.fixture
def tui(ui: Ui, tenant: Tenant) -> Ui:
    ui.login(tenant.username, PASSWORD)
    return ui


def _no_console_errors(ui: Ui) -> None:
    # script errors (an API refusal's HTTP status is logged as a network error: not the page's fault)
    errors = [e for e in ui.browser.console_log() if e.get("level") == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors


def _row_action(ui: Ui, row_text: str, label: str) -> None:
    ui.click(label, within=ui.row(row_text))


def test_volume_create_attach_resize_detach_delete(tui: Ui, tenant: Tenant) -> None:
    ui = tui
    ui.go("volumes")
    ui.wait_text("ROOT")  # the VM's root disk is listed
    ui.click("Create volume")
    ui.fill("Name", "data1")
    ui.fill("Disk offering", "custom (custom size)")
    ui.fill("Size (GB)", "2")
    ui.screenshot("volume-create")
    ui.submit("Create")
    assert "created" in ui.toast("ok")
    assert "2.0 GiB" in ui.row("data1").text

    _row_action(ui, "data1", "Attach")
    ui.fill("Instance", "web1 (Running)")
    ui.submit("Attach")
    assert "attached" in ui.toast("ok")
    wait_for("the volume attached in the list", lambda: "web1" in ui.row("data1").text, timeout=30, interval=0.3)
    # an attached volume offers Detach, not Delete
    assert "Delete" not in ui.row("data1").text
    ui.screenshot("volumes")

    # shrinking without saying so: the API refuses, the dialog shows why and stays open
    _row_action(ui, "data1", "Resize")
    ui.fill("New size (GB)", "1")
    ui.submit("Resize")
    assert "shrink" in (ui.dialog_error() or "")
    ui.fill("New size (GB)", "3")
    ui.submit("Resize")
    assert ui.dialog_error() is None
    wait_for("the new size", lambda: "3.0 GiB" in ui.row("data1").text, timeout=60, interval=0.3)

    ui.clear_toasts()
    _row_action(ui, "data1", "Detach")
    ui.click("Detach")  # the confirmation
    assert "Detaching data1: done" in ui.toast("ok")
    wait_for("the volume detached", lambda: "web1" not in ui.row("data1").text, timeout=30, interval=0.3)

    ui.clear_toasts()
    _row_action(ui, "data1", "Delete")
    ui.click("Delete")
    assert "Deleting data1: done" in ui.toast("ok")
    wait_for("the row gone", lambda: not any("data1" in r for r in ui.rows()), timeout=30, interval=0.3)
    assert tenant.client.listVolumes(name="data1") == {}
    # the one refusal is the shrink the test provoked
    assert [c["command"] for c in ui.refused_calls()] == ["resizeVolume"]
    _no_console_errors(ui)


def test_template_upload_from_a_file_shows_progress(tui: Ui, cloud: UiCloud, tmp_path: Path) -> None:
    ui = tui
    image = tmp_path / "uploaded.qcow2"
    qemu_img.create(str(image), "qcow2", 16 * 1024 * 1024, options=["preallocation=full"])
    ui.go("templates")
    # every value the progress bar takes, as the page sets it
    ui.browser.js("window.__progress = []; new MutationObserver((ms) => ms.forEach((m) =>"
                  " window.__progress.push(Number(m.target.getAttribute('value'))))).observe(document.body,"
                  " {subtree: true, attributes: true, attributeFilter: ['value']});")
    ui.click("Upload file")
    ui.fill("File", str(image))
    ui.fill("Name", "uploaded")
    ui.fill("Hypervisor", "Simulator")
    ui.screenshot("template-upload")
    ui.submit("Upload")
    ui.browser.wait_js("the upload to finish", "document.querySelector('li.upload.done, li.upload.failed')",
                       timeout=120)
    state = ui.browser.js("const li = document.querySelector('li.upload');"
                          " return [li.className, li.querySelector('progress').value, li.innerText];")
    assert "done" in state[0], state
    assert state[1] == 100 and "100 % — ready" in state[2]
    seen = ui.browser.js("return window.__progress;")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen
    assert "uploaded and ready" in ui.toast("ok")
    wait_for("the template ready in the list", lambda: "Ready" in ui.row("uploaded").text, timeout=30,
             interval=0.3)
    ui.screenshot("templates")
    assert ui.refused_calls() == []
    _no_console_errors(ui)


def test_iso_registered_by_url(tui: Ui, cloud: UiCloud) -> None:
    ui = tui
    iso = bytearray(0x9000)
    iso[0x8001:0x8006] = b"CD001"
    (cloud.cloud.base / "images" / "rescue.iso").write_bytes(bytes(iso))
    ui.go("isos")
    ui.click("Register from URL")
    # featuring is for operators: a tenant's form does not offer it
    assert "Featured" not in ui.dialog().text
    ui.fill("Name", "rescue")
    ui.fill("URL", cloud.images.url("rescue.iso"))
    ui.submit("Register")
    assert "downloading" in ui.toast("ok")
    wait_for("the ISO ready", lambda: "Ready" in ui.row("rescue").text, timeout=60, interval=0.5)
    ui.screenshot("isos")
    # a URL the server cannot fetch: registered, then shown as failed, not hidden
    ui.click("Register from URL")
    ui.fill("Name", "missing")
    ui.fill("URL", cloud.images.url("no-such.iso"))
    ui.submit("Register")
    wait_for("the failure shown", lambda: "badge bad" in ui.row("missing").get_attribute("innerHTML"),
             timeout=60, interval=0.5)
    assert ui.refused_calls() == []


def test_ssh_key_pair_private_key_shown_once(tui: Ui, tenant: Tenant) -> None:
    ui = tui
    ui.go("sshkeys")
    ui.click("Create key pair")
    ui.fill("Name", "laptop")
    ui.submit("Create")
    ui.wait_text("This is the only time the private key is shown")
    key = ui.browser.js("return document.querySelector('dialog[open] textarea.private-key').value;")
    assert "PRIVATE KEY" in key
    ui.screenshot("sshkey-private")
    ui.click("I have saved it")
    fingerprint = tenant.client.listSSHKeyPairs(name="laptop")["sshkeypair"][0]["fingerprint"]
    assert fingerprint in ui.row("laptop").text
    ui.go("sshkeys")
    assert "PRIVATE KEY" not in ui.text()

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    ui.click("Register public key")
    ui.fill("Name", "desk")
    ui.fill("Public key", public)
    ui.submit("Register")
    assert "registered" in ui.toast("ok")
    ui.row("desk")
    ui.screenshot("sshkeys")
    _row_action(ui, "desk", "Delete")
    ui.click("Delete")
    wait_for("the key gone", lambda: not any("desk" in r for r in ui.rows()), timeout=30, interval=0.3)
    assert [p["name"] for p in tenant.client.listSSHKeyPairs()["sshkeypair"]] == ["laptop"]
    assert ui.refused_calls() == []


def test_events_and_jobs_show_the_actions(tui: Ui) -> None:
    ui = tui
    ui.go("events")
    ui.wait_text("VOLUME.CREATE")
    ui.wait_text("VOLUME.DELETE")
    ui.screenshot("events")
    ui.fill("Level", "ERROR")
    ui.settled()
    assert not any("VOLUME.CREATE" in r for r in ui.rows())
    ui.go("jobs")
    ui.row("attachVolume")
    assert "Succeeded" in ui.row("attachVolume").text
    ui.screenshot("jobs")
    assert ui.refused_calls() == []
    _no_console_errors(ui)


def test_admin_sees_every_account(admin_ui: Ui, tenant: Tenant) -> None:
    ui = admin_ui
    ui.go("volumes")
    assert "web1" in ui.row(tenant.username).text  # the tenant's VM's disk, with its account
    ui.go("templates")
    ui.fill("Show", "All (every account)")
    ui.settled()
    assert tenant.username in ui.row("uploaded").text
    ui.click("Register from URL")
    assert "Featured" in ui.dialog().text
    ui.click("Cancel")
    ui.go("sshkeys")
    assert tenant.username in ui.row("laptop").text
    ui.go("events")
    ui.row(tenant.username)
    ui.go("jobs")
    ui.row("uploadTemplate")
    assert ui.refused_calls() == []
    _no_console_errors(ui)
