"""The test guest on a network with a (stand-in) virtual router: a real TCG guest gets its address
by DHCP from dnsmasq, fetches its metadata, public keys, user data and password over HTTP from
the DHCP server, runs its ``#!/bin/sh`` user data (which resolves names through the router) and
reports everything on its serial console. The stand-in (``tests/support/guest_net.py``) lives in a
bridge and a namespace this test creates; no packet leaves the machine."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

import pytest

from hvcloud.storage import guest_image
from tests.support import guest_console
from tests.support.guest_net import FakeRouterUnavailable, GuestEntry, fake_router
from tests.support.guest_vm import running_guest
from tests.support.wait import wait_for_count

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]

BOOT_TIMEOUT = 180.0
DOMAIN = "cs1cloud.internal"
PEER = ("peer-vm", "10.1.1.77")
USER_DATA = f"""#!/bin/sh
echo "user data runs as $(id -u) on $(hostname)"
nslookup {PEER[0]}.{DOMAIN} 10.1.1.1
cat /etc/resolv.conf
ip route show default
echo 'quotes " and \\ and é survive'
exit 7
"""
KEYS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvcloudtestkey1 alice@example\nssh-rsa AAAAB3Nza bob@example\n"


def random_mac() -> str:
    return "02:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))


def test_guest_leases_reads_its_metadata_and_resolves_through_the_router(
        tmp_path: Path, guest: guest_image.GuestImage, vm_prefix: str) -> None:
    entry = GuestEntry(mac=random_mac(), ip="10.1.1.23", hostname="web-1", instance_id="i-2-23-VM",
                       user_data=USER_DATA, public_keys=KEYS, password="p@ss word!")
    with contextlib.ExitStack() as stack:
        try:
            router = stack.enter_context(fake_router(tmp_path / "router", [entry], {PEER[0]: PEER[1]}, domain=DOMAIN))
        except FakeRouterUnavailable as exc:
            pytest.skip(f"cannot run the stand-in router: {exc}")
        with running_guest(tmp_path / "vm", guest, router.bridge, entry.mac, vm_prefix + "net") as console:
            guest_console.wait_for_marker(console, guest_image.BOOT_MARKER, BOOT_TIMEOUT)
            # the disk watch starts as before, whatever the network does
            guest_console.wait_for_marker(console, guest_image.DISKS_MARKER, 60)
            guest_console.wait_for_marker(console, guest_image.LEASE_MARKER, 90)
            done = guest_console.wait_for_marker(console, guest_image.SCRIPT_DONE_MARKER, 120)
            text = guest_console.last_boot(console)
        asked = router.requests()
        dhcp_log = router.dnsmasq_log.read_text()

    lease = guest_console.lease(text)
    assert lease is not None, text
    assert lease["ip"] == entry.ip and lease["mask"] == "255.255.255.0"
    assert lease["router"] == router.address and lease["server"] == router.address
    assert lease["dns"] == router.address and lease["domain"] == DOMAIN and lease["host"] == entry.hostname

    meta = guest_console.meta(text)
    assert meta == {"instance-id": entry.instance_id, "local-hostname": entry.hostname, "local-ipv4": entry.ip,
                    "public-keys": KEYS, "user-data": USER_DATA, "password": entry.password}, text
    assert guest_console.meta_errors(text) == set()

    out = guest_console.script_lines(text)
    assert out[0] == f"user data runs as 0 on {entry.hostname}"
    assert f"Name:\t{PEER[0]}.{DOMAIN}" in out and f"Address: {PEER[1]}" in out, out
    assert f"search {DOMAIN}" in out and f"nameserver {router.address}" in out
    assert any(line.startswith(f"default via {router.address} dev eth0") for line in out), out
    assert "quotes \" and \\ and é survive" in out
    assert done == f"{guest_image.SCRIPT_DONE_MARKER} rc=7" and guest_console.script_rc(text) == 7

    # the router's side: every fetch came from the guest's leased address; the password was acknowledged
    assert {r["client"] for r in asked} == {entry.ip}
    assert [r["request"] for r in asked if r["port"] == "8080"] == ["send_my_password", "saved_password"]
    assert {r["path"] for r in asked if r["port"] == "80"} == {p for _, p in guest_image.META_PATHS}
    assert f"DHCPACK({router.ns_if}) {entry.ip} {entry.mac} {entry.hostname}" in dhcp_log

    seconds = guest_console.nicup_to_lease_seconds(text)
    assert seconds is not None and seconds >= 0
    print(f"\nguest NIC-up -> lease: {seconds:.2f} s (guest uptime clock)")


def test_no_lease_and_no_metadata_never_hold_up_the_guest(
        tmp_path: Path, guest: guest_image.GuestImage, vm_prefix: str) -> None:
    """Two guests at once on one stand-in router: one whose MAC dnsmasq does not know (no lease:
    its disk watch starts first, it reports ``HVCLOUD-LEASE none`` and udhcpc keeps asking in the
    background) and one with a lease that the metadata service does not know (an error line per
    key, the password server's ``saved_password``, no script)."""
    known = GuestEntry(mac=random_mac(), ip="10.1.1.31", hostname="no-meta", instance_id="i-2-31-VM",
                       user_data="#!/bin/sh\necho must not run\n", metadata=False)
    stranger_mac = random_mac()
    with contextlib.ExitStack() as stack:
        try:
            router = stack.enter_context(fake_router(tmp_path / "router", [known], domain=DOMAIN))
        except FakeRouterUnavailable as exc:
            pytest.skip(f"cannot run the stand-in router: {exc}")
        no_meta = stack.enter_context(
            running_guest(tmp_path / "vm1", guest, router.bridge, known.mac, vm_prefix + "nometa"))
        stranger = stack.enter_context(
            running_guest(tmp_path / "vm2", guest, router.bridge, stranger_mac, vm_prefix + "nolease"))
        guest_console.wait_for_marker(stranger, guest_image.BOOT_MARKER, BOOT_TIMEOUT)
        guest_console.wait_for_marker(stranger, guest_image.LEASE_MARKER, 120)
        guest_console.wait_for_marker(no_meta, guest_image.LEASE_MARKER, BOOT_TIMEOUT)
        guest_console.wait_for_marker(no_meta, f"{guest_image.META_MARKER} password", 120)

        def discovers() -> int:
            return router.dnsmasq_log.read_text().count(f"DHCPDISCOVER({router.ns_if}) {stranger_mac} no address")

        # after giving up on the quick attempts, udhcpc goes on asking in the background
        wait_for_count("the stranger's background DHCP discovers", discovers, 2, timeout=60)
        stranger_text = guest_console.last_boot(stranger)
        no_meta_text = guest_console.last_boot(no_meta)
        asked = router.requests()

    order = guest_console.lines(stranger_text)
    disks = next(i for i, ln in enumerate(order) if ln.startswith(guest_image.DISKS_MARKER))
    assert order.index(f"{guest_image.LEASE_MARKER} none") > disks, "the disk watch waited for DHCP"
    assert guest_console.lease_gave_up(stranger_text) and guest_console.lease(stranger_text) is None
    assert guest_console.marker_lines(stranger_text, guest_image.META_MARKER) == []
    assert guest_console.nicup_time(stranger_text) is not None

    lease = guest_console.lease(no_meta_text)
    assert lease is not None and lease["ip"] == known.ip and lease["host"] == known.hostname
    assert guest_console.meta_errors(no_meta_text) == {key for key, _ in guest_image.META_PATHS}
    assert guest_console.meta(no_meta_text) == {"password": "saved_password"}
    assert guest_console.script_lines(no_meta_text) == [] and guest_console.script_rc(no_meta_text) is None
    assert {r["status"] for r in asked if r["port"] == "80"} == {"404"}
    assert [r["request"] for r in asked if r["port"] == "8080"] == ["send_my_password"], "nothing to acknowledge"
