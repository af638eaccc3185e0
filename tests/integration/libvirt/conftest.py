"""Fixtures for tests against the real libvirtd (qemu:///system) with TCG guests.

Every VM is named ``hvtest-<run id>-…`` and every fixture removes what it made, so parallel runs
by other engineers on the same libvirtd do not collide.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator

import pytest

from hvcloud.network.bridges import Bridges, NetworkError
from hvcloud.storage import guest_image

pytestmark = pytest.mark.libvirt

URI = "qemu:///system"
RUN_ID = uuid.uuid4().hex[:6]


def _libvirt_reachable() -> str | None:
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed"
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        return f"libvirtd is not reachable at {URI}: {exc.get_error_message()} (scripts/libvirt-up starts it)"
    conn.close()
    return None


@pytest.fixture(scope="session")
def libvirt_ok() -> None:
    reason = _libvirt_reachable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def guest() -> guest_image.GuestImage:
    if not shutil.which("apt-get") or not shutil.which("syslinux"):
        pytest.skip("apt-get and syslinux are needed to build the test guest (scripts/setup installs them)")
    try:
        return guest_image.build()
    except guest_image.GuestBuildError as exc:
        pytest.skip(f"cannot build the test guest: {exc}")


@pytest.fixture(scope="session")
def bridge() -> Iterator[str]:
    name = f"hvt{RUN_ID}"
    bridges = Bridges()
    try:
        bridges.ensure_bridge(name)
    except NetworkError as exc:
        pytest.skip(f"cannot create a test bridge: {exc}")
    yield name
    bridges.delete(name)


def remove_domains(matches: Callable[[str], bool]) -> int:
    """Destroy and undefine every domain whose name ``matches``; how many there were."""
    import libvirt

    conn = libvirt.open(URI)
    removed = 0
    try:
        for dom in conn.listAllDomains(0):
            if matches(dom.name()):
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                removed += 1
    finally:
        conn.close()
    return removed


def running_domains(matches: Callable[[str], bool]) -> set[str]:
    """Names of the active domains whose name ``matches``."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        return {d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) if matches(d.name())}
    finally:
        conn.close()


@pytest.fixture
def vm_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique VM-name prefix; every domain with it is removed afterwards."""
    prefix = f"hvtest-{RUN_ID}-{abs(hash(request.node.name)) % 10000}-"
    yield prefix
    remove_domains(lambda name: name.startswith(prefix))


@pytest.fixture
def suffix() -> Iterator[str]:
    """A unique ``instance.name`` for a management server, so that the VMs it names
    (``i-<account>-<number>-<suffix>``) never collide with others on the same libvirtd; every domain
    with it is removed afterwards."""
    value = f"hvt{uuid.uuid4().hex[:10]}"
    yield value
    remove_domains(lambda name: name.endswith(f"-{value}"))
