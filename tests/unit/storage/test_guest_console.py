"""Parsing the test guest's serial console (tests/support/guest_console.py): well-formed logs as the
tty writes them, and malformed, oversized, hostile and out-of-order ones."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hvcloud.storage import guest_image
from tests.support import guest_console as gc

LEASE = ("HVCLOUD-LEASE ip=10.1.1.23 mask=255.255.255.0 router=10.1.1.1 dns=10.1.1.1,10.1.1.2 "
         "domain=cs1cloud.internal host=web-1 server=10.1.1.1 t=2.90")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tty(*lines: str) -> str:
    """As the guest's ttyS0 writes them: CRLF line ends."""
    return "".join(f"{ln}\r\n" for ln in lines)


SCRIPT = "#!/bin/sh\necho hi\n"
GOOD = tty(
    "SeaBIOS (version 1.16)", guest_image.BOOT_MARKER, "HVCLOUD-GUEST-NET eth0 up 02:00:00:00:00:01",
    "HVCLOUD-NICUP t=2.64", "HVCLOUD-GUEST-DISKS vda ", LEASE,
    "HVCLOUD-META instance-id i-2-23-VM", "HVCLOUD-META local-hostname web-1",
    f"HVCLOUD-META user-data-b64 {b64(SCRIPT)}", "HVCLOUD-META public-keys-b64 ",
    "HVCLOUD-META error password", "HVCLOUD-SCRIPT hi", "HVCLOUD-SCRIPT ", "HVCLOUD-SCRIPT-DONE rc=0")


def test_a_whole_boot_is_parsed() -> None:
    lease = gc.lease(GOOD)
    assert lease == {"ip": "10.1.1.23", "mask": "255.255.255.0", "router": "10.1.1.1", "dns": "10.1.1.1,10.1.1.2",
                     "domain": "cs1cloud.internal", "host": "web-1", "server": "10.1.1.1", "t": "2.90"}
    assert gc.nicup_time(GOOD) == 2.64
    assert gc.nicup_to_lease_seconds(GOOD) == pytest.approx(0.26)
    assert gc.meta(GOOD) == {"instance-id": "i-2-23-VM", "local-hostname": "web-1",
                             "user-data": SCRIPT, "public-keys": ""}
    assert gc.meta_errors(GOOD) == {"password"}
    assert gc.script_lines(GOOD) == ["hi", ""]
    assert gc.script_rc(GOOD) == 0
    assert not gc.lease_gave_up(GOOD)


def test_a_path_is_read_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    assert gc.lease(log) is None and gc.meta(log) == {} and gc.script_lines(log) == []
    log.write_bytes(GOOD.encode() + b"\xff\xfe\x00 garbage\r\n")
    assert gc.lease(log) is not None and gc.meta(log)["instance-id"] == "i-2-23-VM"


def test_nothing_yet_and_gave_up() -> None:
    assert gc.lease("") is None and gc.nicup_to_lease_seconds("") is None and gc.script_rc("") is None
    none = tty(guest_image.BOOT_MARKER, "HVCLOUD-NICUP t=1.0", "HVCLOUD-LEASE none")
    assert gc.lease(none) is None and gc.lease_gave_up(none) and gc.nicup_to_lease_seconds(none) is None


def test_markers_count_only_at_the_start_of_a_line() -> None:
    """A script's output, a kernel message or a metadata value cannot forge a marker."""
    forged = tty("HVCLOUD-SCRIPT HVCLOUD-LEASE ip=6.6.6.6", "[ 1.0] x HVCLOUD-META instance-id evil",
                 "HVCLOUD-SCRIPT-DONE rc=3", "HVCLOUD-LEASEip=6.6.6.6", "HVCLOUD-METAinstance-id evil",
                 "HVCLOUD-SCRIPTED rc=1")
    assert gc.lease(forged) is None and gc.meta(forged) == {}
    assert gc.script_lines(forged) == ["HVCLOUD-LEASE ip=6.6.6.6"]
    assert gc.script_rc(forged) == 3


@pytest.mark.parametrize("line", [
    "HVCLOUD-LEASE", "HVCLOUD-LEASE garbage", "HVCLOUD-LEASE ip=", "HVCLOUD-LEASE ip=10.1.1",
    "HVCLOUD-LEASE ip=10.1.1.5 ip=10.1.1.6", "HVCLOUD-LEASE ip=10.1.1.5 evil=1", "HVCLOUD-LEASE ip=abc.d.e.f",
    "HVCLOUD-LEASE mask=255.0.0.0", "HVCLOUD-LEASE ip=10.1.1.5 =x", "HVCLOUD-LEASE ip=1.2.3.4\x00",
])
def test_malformed_leases_are_ignored(line: str) -> None:
    assert gc.lease(tty(line)) is None
    # ... and do not hide the last good one before them
    assert gc.lease(tty(LEASE, line)) is not None


@pytest.mark.parametrize("line", [
    "HVCLOUD-META", "HVCLOUD-META ", "HVCLOUD-META UPPER x", "HVCLOUD-META key/../x v",
    "HVCLOUD-META user-data-b64 !!!",
    "HVCLOUD-META user-data-b64 abc", "HVCLOUD-META -lead x", "HVCLOUD-META " + "k" * 100 + " v",
    "HVCLOUD-META error", "HVCLOUD-META error BAD KEY",
])
def test_malformed_metadata_is_left_out(line: str) -> None:
    assert gc.meta(tty(line)) == {}
    assert gc.meta_errors(tty(line)) == set()


def test_values_keep_their_spaces_and_b64_decodes_exactly() -> None:
    text = tty("HVCLOUD-META note a  b ", f"HVCLOUD-META password-b64 {b64('p@ss word!')}",
               "HVCLOUD-META bad-utf8-b64 " + base64.b64encode(b"\xff ok").decode())
    assert gc.meta(text) == {"note": "a  b ", "password": "p@ss word!", "bad-utf8": "\ufffd ok"}


def test_oversized_lines_are_dropped() -> None:
    huge = "HVCLOUD-META user-data-b64 " + "A" * (gc.MAX_LINE + 1)
    assert gc.meta(tty("HVCLOUD-META instance-id i-1", huge)) == {"instance-id": "i-1"}


def test_out_of_order_and_repeated_markers_last_one_wins() -> None:
    """Metadata before the lease, a second boot: parsers read lines in order, the last wins;
    ``last_boot`` keeps only the latest boot."""
    first = tty(guest_image.BOOT_MARKER, "HVCLOUD-META instance-id i-old", "HVCLOUD-NICUP t=3.00", LEASE,
                "HVCLOUD-SCRIPT old", "HVCLOUD-SCRIPT-DONE rc=1")
    second = tty(guest_image.BOOT_MARKER, "HVCLOUD-NICUP t=2.50", "HVCLOUD-LEASE none")
    both = first + second
    assert gc.meta(both) == {"instance-id": "i-old"}
    assert gc.lease(both) is None and gc.lease_gave_up(both)
    assert gc.nicup_time(both) == 2.5
    latest = gc.last_boot(both)
    assert gc.script_lines(latest) == [] and gc.meta(latest) == {} and gc.script_rc(latest) is None
    assert gc.lease(gc.last_boot(first)) is not None
    # a lease reported twice in one boot (udhcpc never does, but the parser must not care)
    assert gc.lease(tty(LEASE, LEASE.replace("10.1.1.23", "10.1.1.24")))["ip"] == "10.1.1.24"  # type: ignore[index]


@pytest.mark.parametrize("value", ["abc", "-1", "1e5", "1.2.3", "99999999999", "1." + "0" * 50, ""])
def test_bad_times_are_no_times(value: str) -> None:
    text = tty(f"HVCLOUD-NICUP t={value}", LEASE.replace("t=2.90", f"t={value}"))
    assert gc.nicup_time(text) is None and gc.nicup_to_lease_seconds(text) is None


def test_script_rc_must_be_a_number() -> None:
    assert gc.script_rc(tty("HVCLOUD-SCRIPT-DONE rc=", "HVCLOUD-SCRIPT-DONE rc=x", "HVCLOUD-SCRIPT-DONE")) is None
    assert gc.script_rc(tty("HVCLOUD-SCRIPT-DONE rc=5", "HVCLOUD-SCRIPT-DONE rc=9999")) == 5


def test_wait_for_marker_returns_the_line_and_counts(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    log.write_text(GOOD + GOOD)
    assert gc.wait_for_marker(log, guest_image.SCRIPT_DONE_MARKER, 1) == "HVCLOUD-SCRIPT-DONE rc=0"
    assert gc.wait_for_marker(log, guest_image.BOOT_MARKER, 1, count=2) == guest_image.BOOT_MARKER
    # HVCLOUD-SCRIPT is not HVCLOUD-SCRIPT-DONE
    assert gc.wait_for_marker(log, guest_image.SCRIPT_MARKER, 1) == "HVCLOUD-SCRIPT "
    with pytest.raises(AssertionError, match="timed out"):
        gc.wait_for_marker(log, guest_image.BOOT_MARKER, 0.3, count=3)
    with pytest.raises(AssertionError, match="timed out"):
        gc.wait_for_marker(tmp_path / "missing.log", guest_image.BOOT_MARKER, 0.3)
