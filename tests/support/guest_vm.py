"""One test guest (``hvcloud guest build``) running under the real libvirt driver (QEMU/TCG) with
one NIC on a given bridge; its serial console goes to a file the caller reads with
``tests/support/guest_console.py``. Shared by the suite and ``bench/guest_lease.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hvcloud.hypervisor.driver import DiskSpec, NicSpec, VmSpec
from hvcloud.hypervisor.libvirt.config import LibvirtConfig
from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
from hvcloud.storage import guest_image
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.local import LocalStorageBackend


@contextlib.contextmanager
def running_guest(workdir: Path, image: guest_image.GuestImage, bridge: str, mac: str, name: str,
                  memory_mib: int = 128) -> Iterator[Path]:
    """Define and start ``name`` (domain type qemu) from a linked clone of the template, its NIC
    ``mac`` on ``bridge``; yields the console log's path; destroys and undefines it on exit."""
    with guest_on_driver(workdir, image, NicSpec(device_id=0, mac=mac, network=bridge), name, memory_mib) as (_, log):
        yield log


@contextlib.contextmanager
def guest_on_driver(workdir: Path, image: guest_image.GuestImage, nic: NicSpec, name: str,
                    memory_mib: int = 128) -> Iterator[tuple[LibvirtDriver, Path]]:
    """As :func:`running_guest` with the NIC given whole (e.g. with security groups); yields the
    driver too, for calls on the running guest."""
    bridge = nic.network
    assert bridge is not None
    backend = LocalStorageBackend(workdir / "data")
    pool = PoolRef(uuid="p1", pool_type="Filesystem", path=str(workdir / "primary"))
    store = StoreRef(kind="local", url=str(image.qcow2.parent))
    tmpl = backend.template_to_pool(ImageOnStore(store, image.qcow2.name, "qcow2"), pool, "guest-tmpl")
    vol = backend.volume_from_template(ImageInPool(pool, tmpl.path, tmpl.format), pool, f"ROOT-{name}")
    root = backend.local_path(ImageInPool(pool, vol.path, "qcow2"))
    console_dir = workdir / "console"
    driver = LibvirtDriver(LibvirtConfig(domain_type="qemu", console_log_dir=str(console_dir),
                                         default_bridge=bridge, vnc_listen="127.0.0.1",
                                         local_pool_dir=str(workdir / "primary")))
    spec = VmSpec(name=name, vcpus=1, memory_mib=memory_mib, disks=(DiskSpec(slot=0, path=root, boot=True),),
                  nics=(nic,))
    try:
        driver.define_vm(spec)
        driver.start_vm(name)
        yield driver, console_dir / f"{name}.log"
    finally:
        with contextlib.suppress(Exception):
            driver.stop_vm(name, timeout=0, force=True)
        with contextlib.suppress(Exception):
            driver.undefine_vm(name)
        driver.close()
