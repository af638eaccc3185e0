"""One ``driver`` fixture, parametrized over every driver, for the contract suite.

Drivers differ only where their capability table (``Driver.capabilities``, as the host has it:
``host_capabilities()``) says so: a check that needs a capability a driver lacks is skipped with the
reason the driver states, never passed silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvcloud.hypervisor.contract import ContractEnv, DiskFile
from hvcloud.hypervisor.driver import Driver

RUN_ID = uuid.uuid4().hex[:6]
LIBVIRT_URI = "qemu:///system"

ENV_KEY = pytest.StashKey[ContractEnv]()


@dataclass
class _FakeTime:
    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.001)


def _local_files(tmp_path: Path) -> tuple[Callable[[str], DiskFile], Callable[[str], bool]]:
    def make(label: str) -> DiskFile:
        path = tmp_path / "disks" / f"{label}.qcow2"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        return DiskFile(str(path), "qcow2")

    return make, lambda p: Path(p).exists()


def _simulator(tmp_path: Path, prefix: str) -> Iterator[tuple[Driver, ContractEnv]]:
    from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatorDriver

    # a loopback address: the simulator's consoles are real listeners on the host's address
    drv = SimulatorDriver(tmp_path / "sim", HostProfile(address="127.0.0.5"), fsync=False)
    make, exists = _local_files(tmp_path)
    yield drv, ContractEnv(drv, prefix, "cloudbr0", make, exists,
                           drv.console_protocol, drv.host_capabilities())
    drv.close()


def _hyperv(prefix: str) -> Iterator[tuple[Driver, ContractEnv]]:
    from hvcloud.hypervisor.hyperv import HyperVDriver, schema
    from hvcloud.hypervisor.hyperv.jobs import Clock
    from tests.support.hyperv_fake import HyperVModel

    model = HyperVModel()
    t = _FakeTime()
    drv = HyperVDriver(model.connection(schema.V2), model.connection(schema.CIMV2),
                       console_host="10.0.0.10", job_timeout=30.0,
                       clock=Clock(now=t.now, sleep=t.sleep))
    drv.create_switch("public", "external")

    def make(label: str) -> DiskFile:
        path = f"C:\\VMs\\{label}.vhdx"
        model.add_file(path)
        return DiskFile(path, "vhdx")

    yield drv, ContractEnv(drv, prefix, "public", make, model.has_file,
                           drv.console_protocol, drv.host_capabilities())
    drv.close()


def _libvirt(tmp_path: Path, prefix: str) -> Iterator[tuple[Driver, ContractEnv]]:
    try:
        import libvirt
    except ImportError:
        pytest.skip("libvirt-python is not installed")
    try:
        libvirt.open(LIBVIRT_URI).close()
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirtd is not reachable at {LIBVIRT_URI}: {exc.get_error_message()}")
    from hvcloud.hypervisor.libvirt.config import LibvirtConfig
    from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
    from hvcloud.network.bridges import Bridges, NetworkError
    from hvcloud.storage import qemu_img

    bridge = f"hvc{RUN_ID}"
    bridges = Bridges()
    try:
        bridges.ensure_bridge(bridge)
    except NetworkError as exc:
        pytest.skip(f"cannot create a test bridge: {exc}")
    drv = LibvirtDriver(LibvirtConfig(uri=LIBVIRT_URI, domain_type="qemu",
                                      console_log_dir=str(tmp_path / "console"),
                                      default_bridge=bridge, vnc_listen="127.0.0.1",
                                      local_pool_dir=str(tmp_path / "primary")))

    def make(label: str) -> DiskFile:
        (tmp_path / "disks").mkdir(exist_ok=True)
        path = str(tmp_path / "disks" / f"{label}.qcow2")
        qemu_img.create(path, "qcow2", 1024 * 1024)
        return DiskFile(path, "qcow2")

    try:
        yield drv, ContractEnv(drv, prefix, bridge, make, lambda p: Path(p).exists(),
                               drv.console_protocol, drv.host_capabilities())
    finally:
        drv.close()
        conn = libvirt.open(LIBVIRT_URI)
        try:
            for dom in conn.listAllDomains(0):
                if dom.name().startswith(prefix):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                      | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        finally:
            conn.close()
        bridges.delete(bridge)


@pytest.fixture(params=["simulator", "libvirt", "hyperv"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    """Each driver in turn; its ContractEnv (disk factory, capabilities) is in the node's stash."""
    prefix = f"hvcontract-{RUN_ID}-{abs(hash(request.node.name)) % 10000}-"
    kind = request.param
    if kind == "libvirt":
        request.applymarker(pytest.mark.libvirt)
        gen = _libvirt(tmp_path, prefix)
    elif kind == "hyperv":
        gen = _hyperv(prefix)
    else:
        gen = _simulator(tmp_path, prefix)
    drv, env = next(gen)
    request.node.stash[ENV_KEY] = env
    yield drv
    for _ in gen:
        pass


@pytest.fixture
def env(driver: Driver, request: pytest.FixtureRequest) -> ContractEnv:
    out: ContractEnv = request.node.stash[ENV_KEY]
    return out
