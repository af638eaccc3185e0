"""Hostile storage paths and images arriving over the agent wire, against the real storage backend.

The backend's own tests cover its functions; these drive the agent's HTTP endpoint (signed
CopyCommand / DeleteCommand bodies in Gson shape) with a host whose storage is
``LocalStorageBackend`` on real files, and check that each hostile request gets an in-band
``result:false`` with a clear reason and leaves every file where it was.
"""

from __future__ import annotations

import copy
import os
import random
import warnings
from pathlib import Path
from typing import Any

import pytest

from hvcloud.agent.context import HostContext
from hvcloud.agent.credentials import Credentials
from hvcloud.agent.service import build_app
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatedCluster, SimulatorDriver
from hvcloud.storage import qemu_img
from hvcloud.storage.local import LocalStorageBackend
from tests.fuzz import agent_fuzz
from tests.support.agent_harness import PASSWORD, USER, AgentHarness
from tests.support.wire_samples import sample

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.skipif(not qemu_img.available(), reason="qemu-img is not installed")

COPY = "org.apache.cloudstack.storage.command.CopyCommand"
DELETE = "org.apache.cloudstack.storage.command.DeleteCommand"
TEMPLATE = "org.apache.cloudstack.storage.to.TemplateObjectTO"
PRIMARY = "org.apache.cloudstack.storage.to.PrimaryDataStoreTO"
NFS = "com.cloud.agent.api.to.NfsTO"
MODIFY = "com.cloud.agent.api.ModifyStoragePoolCommand"
DESTROY = "com.cloud.agent.api.storage.DestroyCommand"
VOLUME = "org.apache.cloudstack.storage.to.VolumeObjectTO"
#: the pool of the CopyCommand and CreateObjectCommand samples
POOL_UUID = "5fe2bad3-d785-394e-9949-89786b8a63d2"
MiB = 1 << 20


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (symlinks not followed) with its size and mtime; the pool's empty
    per-name lock files (``.hvcloud-locks``, taken before the source is examined) are not data."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if Path(dirpath).name == ".hvcloud-locks":
            continue
        for f in files:
            st = (Path(dirpath) / f).lstat()
            out[str(Path(dirpath, f).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


class RealStorageAgent(AgentHarness):
    """The in-process agent with its host's storage replaced by the real backend, confined as the
    agent confines it (``--store-root`` = ``store_roots``, default the ``images`` directory)."""

    def __init__(self, base: Path, store_roots: list[Path] | None = None, pool_roots: list[Path] | None = None) -> None:
        super().__init__(base / "agent")
        self.config.store_roots = [base / "images"] if store_roots is None else store_roots
        self.config.pool_roots = pool_roots or []
        driver = SimulatorDriver(base / "agent", HostProfile(address="127.0.0.1"), SimulatedCluster())
        storage = LocalStorageBackend(base / "agent" / "storage", policy=self.config.path_policy())
        ctx = HostContext("127.0.0.1", driver, storage, base / "agent")
        self.hosts = [ctx]
        self.agent = build_app(self.config, self.hosts, Credentials(USER, PASSWORD))
        self.client = TestClient(self.agent.app, base_url="https://127.0.0.1:8250", client=("127.0.0.1", 40000))


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    images = tmp_path / "images"
    images.mkdir()
    qemu_img.create(str(images / "tmpl.qcow2"), "qcow2", MiB)
    outside = tmp_path / "outside"
    outside.mkdir()
    qemu_img.create(str(outside / "secret.qcow2"), "qcow2", MiB)
    os.symlink(outside / "secret.qcow2", images / "link.qcow2")
    qemu_img.create(str(images / "base.qcow2"), "qcow2", MiB)
    qemu_img.create(str(images / "child.qcow2"), "qcow2", MiB, backing=str(images / "base.qcow2"),
                    backing_fmt="qcow2")
    (tmp_path / "primary").mkdir()
    agent = RealStorageAgent(tmp_path)
    assert attach(agent, tmp_path / "primary")["result"] is True
    return {"tmp": tmp_path, "images": images, "primary": tmp_path / "primary", "agent": agent}


def attach(agent: AgentHarness, path: Path | str, uuid: str = POOL_UUID) -> dict[str, Any]:
    """ModifyStoragePoolCommand(add) for a Filesystem pool at ``path``: the answer's fields."""
    body = sample("ModifyStoragePoolCommand")
    body["pool"].update(uuid=uuid, path=str(path), host="127.0.0.1")
    return _answer(agent, MODIFY, body)


def copy_body(world: dict[str, Any], src_path: str, dest_uuid: str = "tmpl-cache",
              store_url: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(sample("CopyCommand-template-to-primary"))
    src = body["srcTO"][TEMPLATE]
    src["path"] = src_path
    src["format"] = "QCOW2"
    src.pop("checksum", None)
    src["imageDataStore"] = {NFS: {"_url": store_url or f"file://{world['images']}", "_role": "Image"}}
    dst = body["destTO"][TEMPLATE]
    dst["uuid"] = dest_uuid
    dst["format"] = "QCOW2"
    dst.pop("checksum", None)
    dst["imageDataStore"][PRIMARY].update(path=str(world["primary"]), poolType="Filesystem", host="127.0.0.1")
    return body


def _answer(agent: AgentHarness, fqcn: str, body: dict[str, Any]) -> dict[str, Any]:
    cls, fields = agent.answer(fqcn, body)
    assert cls == agent_fuzz.HANDLERS[fqcn].answer.FQCN
    return fields


def test_a_plain_template_copies(world: dict[str, Any]) -> None:
    fields = _answer(world["agent"], COPY, copy_body(world, "tmpl.qcow2"))
    assert fields["result"] is True, fields.get("details")
    assert any(name.startswith("tmpl-cache") for name in tree(world["primary"]))


@pytest.mark.parametrize("src_path,reason", [
    ("../outside/secret.qcow2", "outside"),
    ("/etc/passwd", "relative"),
    ("a/../../outside/secret.qcow2", "outside"),
    ("link.qcow2", "outside"),
    ("child.qcow2", "backing"),
])
def test_hostile_sources_are_refused_and_write_nothing(world: dict[str, Any], src_path: str, reason: str) -> None:
    before = {"tmp": tree(world["tmp"])}
    fields = _answer(world["agent"], COPY, copy_body(world, src_path))
    assert fields["result"] is False
    assert reason in fields["details"].lower(), fields["details"]
    after = tree(world["tmp"])
    new = {k for k in after if k not in before["tmp"]} - {p for p in after if p.startswith("agent/")}
    assert new == set(), f"files appeared: {new}"
    assert not any(n.startswith("tmpl-cache") for n in tree(world["primary"]))


@pytest.mark.parametrize("dest", ["../escaped", "/tmp/absolute", "..", "x/../../../escaped"])
def test_hostile_destination_names_are_refused(world: dict[str, Any], dest: str) -> None:
    before = tree(world["tmp"])
    fields = _answer(world["agent"], COPY, copy_body(world, "tmpl.qcow2", dest_uuid=dest))
    assert fields["result"] is False and fields["details"]
    after = tree(world["tmp"])
    assert {k for k in after if k not in before and not k.startswith("agent/")} == set()
    assert not Path("/tmp/absolute").exists() and not Path("/tmp/absolute.qcow2").exists()


def test_delete_with_traversal_leaves_the_target(world: dict[str, Any]) -> None:
    body = copy.deepcopy(sample("CopyCommand-template-to-primary"))["destTO"]
    data = body[TEMPLATE]
    data["imageDataStore"][PRIMARY].update(path=str(world["primary"]), poolType="Filesystem", host="127.0.0.1")
    secret = world["tmp"] / "outside" / "secret.qcow2"
    for path in ("../outside/secret.qcow2", str(secret), "../outside/secret"):
        data["path"] = path
        fields = _answer(world["agent"], DELETE, {"data": body, "wait": 0})
        assert fields["result"] is False, path
        assert secret.exists()


def test_fuzz_slice_against_real_files_writes_nothing_outside(world: dict[str, Any]) -> None:
    """The agent fuzzer's traversal and other mutations against a host with real storage: every answer
    well-formed, and no file appears outside the agent's and the pool's directories."""
    agent: AgentHarness = world["agent"]
    outside_before = tree(world["tmp"] / "outside")
    images_before = tree(world["images"])
    tally = agent_fuzz.Tally.empty()
    seeds = [copy_body(world, "tmpl.qcow2")]
    for i, case in enumerate(agent_fuzz.cases(99, 300, 64 * 1024)):
        if i % 3 == 0:
            mutation = agent_fuzz.MUTATIONS[case.mutation]
            case = agent_fuzz.Case(case.index, COPY, case.mutation, mutation(random.Random(i), seeds[0], 64 * 1024))
        before = agent_fuzz.snapshot(agent.config.data_dir)
        r = agent.post(case.fqcn, case.body)
        agent_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                         agent_fuzz.snapshot(agent.config.data_dir), tally)
    assert tally.failures == []
    assert tree(world["tmp"] / "outside") == outside_before
    assert tree(world["images"]) == images_before
    top = {p.name for p in world["tmp"].iterdir()}
    assert top <= {"images", "outside", "primary", "agent"}, top


# --------------------------------------------------------------------------- roots the caller names


def test_a_root_only_file_cannot_be_copied_in_as_a_template(world: dict[str, Any]) -> None:
    """Regression: the caller named the store (``file://`` + any directory), so a root-only 0600
    file became a 0644 "template" in a pool. A store outside ``--store-root`` is refused."""
    secret = world["tmp"] / "outside" / "secret.qcow2"
    secret.chmod(0o600)
    os.symlink(secret.parent, world["images"] / "outlink")
    for store, path in ((f"file://{secret.parent}", "secret.qcow2"),
                        ("file:///", str(secret).lstrip("/")),
                        (f"file://{world['images']}/../outside", "secret.qcow2"),
                        (f"file://{world['images']}/outlink", "secret.qcow2")):
        before = tree(world["tmp"])
        fields = _answer(world["agent"], COPY, copy_body(world, path, store_url=store))
        assert fields["result"] is False, store
        assert "outside the agent's store roots" in fields["details"], fields["details"]
        assert tree(world["tmp"]) == before


def test_file_stores_are_refused_without_a_store_root(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    qemu_img.create(str(tmp_path / "images" / "tmpl.qcow2"), "qcow2", MiB)
    (tmp_path / "primary").mkdir()
    agent = RealStorageAgent(tmp_path, store_roots=[])
    assert attach(agent, tmp_path / "primary")["result"] is True
    world = {"images": tmp_path / "images", "primary": tmp_path / "primary"}
    before = tree(tmp_path / "primary")
    fields = _answer(agent, COPY, copy_body(world, "tmpl.qcow2"))
    assert fields["result"] is False and "--store-root" in fields["details"], fields["details"]
    assert tree(tmp_path / "primary") == before


def test_a_pool_that_was_never_attached_is_refused(world: dict[str, Any]) -> None:
    other = world["tmp"] / "other-pool"
    body = copy_body(world, "tmpl.qcow2")
    body["destTO"][TEMPLATE]["imageDataStore"][PRIMARY]["path"] = str(other)
    fields = _answer(world["agent"], COPY, body)
    assert fields["result"] is False and "not attached" in fields["details"], fields["details"]
    assert not other.exists()


def _destroy(world: dict[str, Any], path: str, mount: str | None) -> dict[str, Any]:
    body = sample("DestroyCommand")
    body["volume"].update(path=path, mountPoint=mount, format="QCOW2")
    return _answer(world["agent"], DESTROY, body)


@pytest.mark.parametrize("how", ["own-mount", "no-mount", "pool-then-dotdot", "pool-then-absolute",
                                 "backslashes"])
def test_destroy_outside_any_pool_deletes_nothing(world: dict[str, Any], how: str) -> None:
    """Regression: the legacy DestroyCommand took its pool from the volume's own path, so any file
    the agent could reach was deleted."""
    secret = world["tmp"] / "outside" / "secret.qcow2"
    primary = str(world["primary"])
    path, mount = {
        "own-mount": (str(secret), str(secret.parent)),
        "no-mount": (str(secret), None),
        "pool-then-dotdot": (f"{primary}/../outside/secret.qcow2", primary),
        "pool-then-absolute": (str(secret), primary),
        "backslashes": (str(secret).replace("/", "\\"), str(secret.parent).replace("/", "\\")),
    }[how]
    before = tree(world["tmp"])
    fields = _destroy(world, path, mount)
    assert fields["result"] is False, fields
    assert fields["details"]
    assert secret.exists()
    assert tree(world["tmp"]) == before


def test_destroy_inside_an_attached_pool_works(world: dict[str, Any]) -> None:
    vol = world["primary"] / "vol-1.qcow2"
    qemu_img.create(str(vol), "qcow2", MiB)
    fields = _destroy(world, str(vol), str(world["primary"]))
    assert fields["result"] is True, fields
    assert not vol.exists()


@pytest.mark.parametrize("where", ["/", "/etc", "/usr/lib", "agent-data", "dotdot-to-etc", "symlink-to-etc"])
def test_system_and_agent_directories_cannot_be_attached(world: dict[str, Any], where: str) -> None:
    link = world["tmp"] / "innocent"
    os.symlink("/etc", link)
    path = {"agent-data": str(world["tmp"] / "agent"),
            "dotdot-to-etc": f"{world['primary']}/" + "../" * 12 + "etc",
            "symlink-to-etc": str(link)}.get(where, where)
    fields = attach(world["agent"], path, uuid="evil-pool")
    assert fields["result"] is False, fields
    assert "cannot be a storage pool" in fields["details"], fields["details"]
    fields = _destroy(world, f"{path}/hostname", path)
    assert fields["result"] is False and Path("/etc/hostname").exists()


def test_pool_roots_confine_attaching(tmp_path: Path) -> None:
    roots = tmp_path / "pools"
    (roots / "p1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", roots / "sneaky")
    agent = RealStorageAgent(tmp_path, pool_roots=[roots])
    assert attach(agent, roots / "p1")["result"] is True
    for bad in (tmp_path / "elsewhere", roots / "sneaky", roots / ".." / "elsewhere"):
        fields = attach(agent, bad, uuid="p2")
        assert fields["result"] is False and "outside the agent's pool roots" in fields["details"], bad


def test_attached_pools_survive_a_restart(world: dict[str, Any]) -> None:
    again = RealStorageAgent(world["tmp"])
    fields = _answer(again, COPY, copy_body(world, "tmpl.qcow2"))
    assert fields["result"] is True, fields.get("details")


def test_files_written_are_private(world: dict[str, Any]) -> None:
    """Templates, volumes and files written to image stores are readable by their owner only."""
    agent: AgentHarness = world["agent"]
    assert _answer(agent, COPY, copy_body(world, "tmpl.qcow2"))["result"] is True
    create = sample("CreateObjectCommand")
    create["data"][VOLUME].update(size=MiB)
    create["data"][VOLUME]["dataStore"][PRIMARY].update(path=str(world["primary"]))
    assert _answer(agent, "org.apache.cloudstack.storage.command.CreateObjectCommand", create)["result"] is True
    written = [p for p in world["primary"].iterdir() if p.is_file() and not p.name.startswith("hb-")]
    assert len(written) == 2, written
    for p in written:
        assert p.stat().st_mode & 0o077 == 0, (p, oct(p.stat().st_mode))
