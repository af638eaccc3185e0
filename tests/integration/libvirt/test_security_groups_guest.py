"""Security groups on a real QEMU/TCG guest through the libvirt driver: the guest starts paused
with anti-spoofing and default deny on its tap, still leases its address by DHCP and reads its
metadata from the (stand-in) router, is not reachable until a policy admits it, and a newer policy
closes it again while an older one is ignored; a hot-plugged NIC is protected before its link
comes up. The stand-in router lives in a namespace on a bridge
this test creates; no packet leaves the machine."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import NicSpec
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_nft import TABLE, NftSecurityGroups
from hvcloud.storage import guest_image
from tests.support import guest_console
from tests.support.guest_net import FakeRouter, FakeRouterUnavailable, GuestEntry, fake_router
from tests.support.guest_vm import guest_on_driver

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
BOOT_TIMEOUT = 180.0


def pings(router: FakeRouter, ip: str) -> bool:
    return router.netns_exec(BUSYBOX, "ping", "-c", "2", "-W", "2", ip, timeout=30).returncode == 0


def _drop_empty_tables() -> None:
    """The tables live in the host's namespace: remove them when this test leaves no port."""
    if not NftSecurityGroups().ports():
        for family in ("bridge", "inet"):
            subprocess.run(["nft", "delete", "table", family, TABLE], capture_output=True, check=False)  # noqa: S603


def test_guest_starts_protected_leases_and_follows_its_policy(
        tmp_path: Path, guest: guest_image.GuestImage, vm_prefix: str) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    ip = "10.1.1.31"
    mac = "02:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))
    entry = GuestEntry(mac=mac, ip=ip, hostname="sg-1", instance_id="i-2-31-VM")
    name = vm_prefix + "sg"
    try:
        with contextlib.ExitStack() as stack:
            try:
                router = stack.enter_context(fake_router(tmp_path / "router", [entry]))
            except FakeRouterUnavailable as exc:
                pytest.skip(f"cannot run the stand-in router: {exc}")
            nic = NicSpec(device_id=0, mac=mac, network=router.bridge, security_groups=True, ips=(ip,))
            driver, console = stack.enter_context(guest_on_driver(tmp_path / "vm", guest, nic, name))
            held = NftSecurityGroups().ports()
            tap = next(t for t, p in held.items() if p.mac == mac)
            assert held[tap].seq == -1                       # the defaults, put on before it ran
            guest_console.wait_for_marker(console, guest_image.BOOT_MARKER, BOOT_TIMEOUT)
            guest_console.wait_for_marker(console, guest_image.LEASE_MARKER, 90)
            text = guest_console.last_boot(console)
            lease = guest_console.lease(text)
            assert lease is not None and lease["ip"] == ip   # DHCP passes the anti-spoofing
            guest_console.wait_for_marker(console, guest_image.META_MARKER, 90)
            assert any(r["client"] == ip for r in router.requests())   # and egress is open

            assert not pings(router, ip)                     # default deny inbound
            driver.apply_security_groups(name, NicPolicy(
                mac=mac, ips=(ip,), ingress=(SgRule("icmp", (f"{router.address}/32",), icmp_type=8),),
                egress=(), seq=1))
            assert pings(router, ip)
            driver.apply_security_groups(name, NicPolicy(mac=mac, ips=(ip,), ingress=(), egress=(), seq=2))
            assert not pings(router, ip)
            driver.apply_security_groups(name, NicPolicy(
                mac=mac, ips=(ip,), ingress=(SgRule("all", ("0.0.0.0/0",)),), egress=(), seq=1))
            assert not pings(router, ip)                     # older: ignored
            assert NftSecurityGroups().seq_of(tap) == 2
            # changing the NIC keeps it a security-group NIC (for the next start)
            driver.update_nic(name, mac, enabled=True)
            assert [(n.security_groups, n.ips) for n in driver.get_vm(name).spec.nics] == [(True, (ip,))]
            assert NftSecurityGroups().seq_of(tap) == 2

            # a security-group NIC hot-plugged into the running guest: plugged with its link down,
            # given the defaults, then brought up
            mac2 = "02:01:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))
            driver.plug_nic(name, NicSpec(device_id=1, mac=mac2, network=router.bridge, security_groups=True,
                                          ips=("10.1.1.32",)))
            plugged = {p.mac: (t, p.seq) for t, p in NftSecurityGroups().ports().items()}
            assert plugged[mac2][1] == -1
            assert [n.enabled for n in driver.list_nics(name) if n.mac == mac2] == [True]
            driver.unplug_nic(name, mac2)
            assert mac2 not in {p.mac for p in NftSecurityGroups().ports().values()}
        # the VM is gone: so are its rules
        assert tap not in NftSecurityGroups().ports()
    finally:
        _drop_empty_tables()
