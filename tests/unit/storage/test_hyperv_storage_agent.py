"""The agent end to end on a modelled Hyper-V host: CloudStack's CopyCommands put a VHD template
from a CIFS image store into an ``E:\\Disks`` pool and make a differencing ROOT volume of it, and
StartCommand boots a VM from that volume, as the strict WMI model shows."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hvcloud.agent.config import AgentConfig
from hvcloud.agent.context import HostContext
from hvcloud.agent.credentials import Credentials
from hvcloud.agent.service import build_app
from hvcloud.storage import vhd
from hvcloud.wire import signing
from tests.support.wire_samples import sample
from tests.unit.storage.hyperv_env import HyperVHost, make_host, write_vhd_template

USER, PASSWORD = "admin", "s3cret-pass"
MiB = 1024 * 1024
TEMPLATE_SIZE = 64 * MiB
TMPL_UUID = "7e4c5b0a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
VOL_UUID = "19ae8e67-cd7d-4ab5-a3f6-7b1b3e4e7a10"
CMD = "com.cloud.agent.api.{}"
STORAGE_CMD = "org.apache.cloudstack.storage.command.{}"


class Agent:
    def __init__(self, host: HyperVHost, data_dir: Path) -> None:
        config = AgentConfig(driver="hyperv", data_dir=data_dir, auth="password",  # type: ignore[arg-type]
                             listen_host="127.0.0.1")
        ctx = HostContext("127.0.0.1", host.driver, host.storage, data_dir)
        app = build_app(config, [ctx], Credentials(USER, PASSWORD))
        self.client = TestClient(app.app, base_url="https://127.0.0.1:8250", client=("127.0.0.1", 40000))

    def answer(self, fqcn: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raw = json.dumps(body).encode()
        path = f"/api/HypervResource/{fqcn}"
        headers = {"content-type": "application/json"} | signing.sign_headers(USER, PASSWORD, "POST", path, raw)
        r = self.client.post(path, content=raw, headers=headers)
        assert r.status_code == 200, r.text
        ((cls, fields),) = r.json()[0].items()
        return cls, fields


@pytest.fixture
def host(tmp_path: Path) -> HyperVHost:
    h = make_host(tmp_path)
    h.driver.create_switch("public", "external")
    return h


def _template_on_store(host: HyperVHost) -> tuple[bytes, str]:
    rel = "template/tmpl/2/201/61d5316a-8cd8-4ab6-9b2c-1c2f3c4d5e6f.vhd"
    path = host.root / "secondary" / rel
    path.parent.mkdir(parents=True)
    content = write_vhd_template(path, TEMPLATE_SIZE)
    return content, hashlib.md5(path.read_bytes()).hexdigest()


def test_copy_template_clone_and_start_on_hyperv(host: HyperVHost, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    content, md5 = _template_on_store(host)
    agent = Agent(host, tmp_path / "agent")

    # 1. template from the CIFS image store (credentials in the URL) into the Filesystem pool
    to_primary = copy.deepcopy(sample("CopyCommand-template-to-primary"))
    src = to_primary["srcTO"]["org.apache.cloudstack.storage.to.TemplateObjectTO"]
    src["checksum"] = md5
    src["imageDataStore"]["com.cloud.agent.api.to.NfsTO"]["_url"] = \
        "cifs://10.1.1.1/secondary?user=administrator&password=topsecret"
    to_primary["destTO"]["org.apache.cloudstack.storage.to.TemplateObjectTO"]["checksum"] = md5
    cls, ans = agent.answer(STORAGE_CMD.format("CopyCommand"), to_primary)
    assert cls.endswith("CopyCmdAnswer") and ans["result"] is True, ans
    tmpl = ans["newData"]["org.apache.cloudstack.storage.to.TemplateObjectTO"]
    assert tmpl["path"] == f"{TMPL_UUID}.vhd" and tmpl["format"] == "VHD"
    assert tmpl["size"] == TEMPLATE_SIZE
    cached = host.root / "e" / "Disks" / f"{TMPL_UUID}.vhd"
    assert cached.is_file()

    # 2. the ROOT volume as a linked clone of the cached template
    to_volume = copy.deepcopy(sample("CopyCommand-template-to-volume"))
    vsrc = to_volume["srcTO"]["org.apache.cloudstack.storage.to.TemplateObjectTO"]
    vsrc["format"], vsrc["path"] = "VHD", tmpl["path"]
    cls, ans = agent.answer(STORAGE_CMD.format("CopyCommand"), to_volume)
    assert ans["result"] is True, ans
    vol = ans["newData"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]
    assert vol["path"] == f"{VOL_UUID}.vhd" and vol["format"] == "VHD" and vol["size"] == TEMPLATE_SIZE
    child = host.root / "e" / "Disks" / vol["path"]
    with vhd.Chain(str(child)) as chain:
        assert [layer.path for layer in chain.layers] == [str(child), str(cached)]
        assert chain.layers[0].disk_type == vhd.DiskType.DIFFERENCING
        assert chain.read(0, TEMPLATE_SIZE) == content

    # 3. StartCommand whose ROOT disk is that differencing VHD
    start = copy.deepcopy(sample("StartCommand"))
    root = start["vm"]["disks"][0]["data"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]
    root["format"], root["path"] = "VHD", vol["path"]
    cls, ans = agent.answer(CMD.format("StartCommand"), start)
    assert cls.endswith("StartAnswer") and ans["result"] is True, ans
    assert host.model.vm_state("i-2-17-VM") == 2
    resources = host.model.vm_resources("i-2-17-VM")
    disks = [r for r in resources if r.get("ResourceSubType") == "Microsoft:Hyper-V:Virtual Hard Disk"]
    assert [d["HostResource"] for d in disks] == [[f"E:\\Disks\\{VOL_UUID}.vhd"]]
    drive = next(r for r in resources if r["InstanceID"] in disks[0]["Parent"])
    controller = next(r for r in resources if r["InstanceID"] in drive["Parent"])
    assert controller["ResourceSubType"] == "Microsoft:Hyper-V:Emulated IDE Controller"
    assert controller["Address"] == "0" and drive["AddressOnParent"] == "0"

    out = capsys.readouterr()
    assert "topsecret" not in out.out + out.err


def test_qcow2_template_is_an_in_band_failure(host: HyperVHost, tmp_path: Path) -> None:
    _template_on_store(host)
    agent = Agent(host, tmp_path / "agent")
    cmd = copy.deepcopy(sample("CopyCommand-template-to-primary"))
    for side in ("srcTO", "destTO"):
        t = cmd[side]["org.apache.cloudstack.storage.to.TemplateObjectTO"]
        t["format"], t["checksum"] = "QCOW2", None
    _, ans = agent.answer(STORAGE_CMD.format("CopyCommand"), cmd)
    assert ans["result"] is False and "VHD and VHDX" in ans["details"]
    assert not any((host.root / "e" / "Disks").glob("*.qcow2"))


def test_create_object_makes_a_dynamic_vhdx_through_ims(host: HyperVHost, tmp_path: Path) -> None:
    agent = Agent(host, tmp_path / "agent")
    cmd = copy.deepcopy(sample("CreateObjectCommand"))
    _, ans = agent.answer(STORAGE_CMD.format("CreateObjectCommand"), cmd)
    assert ans["result"] is True, ans
    data = next(iter(ans["data"].values()))
    assert data["format"] == "VHDX" and data["path"].endswith(".vhdx")
    assert host.model.virtual_disks[f"e:\\disks\\{data['path']}".lower()]["Type"] == 3


def test_hyperv_host_pairs_the_driver_with_the_hyperv_backend(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from hvcloud.agent.drivers import hyperv_host
    from hvcloud.hypervisor.hyperv import HyperVDriver
    from hvcloud.storage.hyperv import HyperVStorageBackend

    (tmp_path / "m").mkdir()
    modelled = make_host(tmp_path / "m")
    monkeypatch.setattr(HyperVDriver, "connect", classmethod(lambda cls, *a, **k: modelled.driver))
    config = AgentConfig(driver="hyperv", data_dir=tmp_path / "agent", listen_host="0.0.0.0")  # type: ignore[arg-type]
    ctx = hyperv_host(config)
    assert ctx.driver is modelled.driver
    assert isinstance(ctx.storage, HyperVStorageBackend) and ctx.storage.disks is not None
    (tmp_path / "m/e/Disks").mkdir()
    ctx.storage.disks.create_dynamic("E:\\Disks\\x.vhdx", MiB)
    assert modelled.model.has_file("E:\\Disks\\x.vhdx")


def test_resize_volume_grows_a_vhdx_through_ims_and_never_shrinks(host: HyperVHost, tmp_path: Path) -> None:
    agent = Agent(host, tmp_path / "agent")
    _, ans = agent.answer(STORAGE_CMD.format("CreateObjectCommand"), copy.deepcopy(sample("CreateObjectCommand")))
    data = next(iter(ans["data"].values()))
    resize = copy.deepcopy(sample("ResizeVolumeCommand"))
    resize["path"] = data["path"]
    cls, grown = agent.answer("com.cloud.agent.api.storage.ResizeVolumeCommand", resize)
    assert cls == "com.cloud.agent.api.storage.ResizeVolumeAnswer" and grown["result"] is True, grown
    assert grown["newSize"] == resize["newSize"]
    assert host.model.virtual_disks[f"e:\\disks\\{data['path']}".lower()]["MaxInternalSize"] == resize["newSize"]
    resize["newSize"], resize["shrinkOk"] = data["size"], True
    _, shrunk = agent.answer("com.cloud.agent.api.storage.ResizeVolumeCommand", resize)
    assert shrunk["result"] is False and "not supported on Hyper-V volumes" in shrunk["details"]
