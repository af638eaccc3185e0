"""The guest's network script, run by the very busybox the guest image holds (unpacked from the
same Debian package): shell syntax, and every value the guest prints comes back byte-exact through
``tests/support/guest_console.py``, whatever the metadata service sends."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcloud.storage import guest_image
from tests.support import guest_console

pytestmark = pytest.mark.skipif(not (shutil.which("apt-get") and shutil.which("dpkg-deb")),
                                reason="apt-get and dpkg-deb are needed to fetch busybox-static")


@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        deb = guest_image.download(guest_image.BUSYBOX, guest_image.default_cache_dir() / "debs")
    except guest_image.GuestBuildError as exc:
        pytest.skip(f"cannot fetch busybox-static: {exc}")
    root = tmp_path_factory.mktemp("busybox")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)  # noqa: S603
    return root / "bin" / "busybox"


APPLETS = ("udhcpc", "wget", "cat", "sed", "mkdir", "timeout", "base64", "cmp", "head", "cp", "rm", "echo", "dd",
           "printf")


def applet_dir(busybox: Path, tmp_path: Path) -> Path:
    """A PATH of busybox applets only: the guest has no other tools."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in APPLETS:
        (bindir / applet).symlink_to(busybox)
    return bindir


@pytest.mark.parametrize("text", [guest_image.NET_SCRIPT, guest_image.DHCP_SCRIPT, guest_image.INIT_SCRIPT,
                                  guest_image.STREAM_CGI])
def test_guest_scripts_parse(busybox: Path, text: str) -> None:
    proc = subprocess.run([str(busybox), "sh", "-n", "-c", text], capture_output=True, text=True, check=False)  # noqa: S603
    assert proc.returncode == 0, proc.stderr


VALUES: list[bytes] = [
    b"i-2-10-VM", b"i-2-10-VM\n", b"", b"\n", b"saved_password", b"p@ss word!", b"two\nlines\n",
    b"trailing\n\n", b"back\\slash", b"tab\there", b"\r\n", "h\u00e9llo \u2603".encode(),
    b"a\x00nul", b"HVCLOUD-LEASE ip=6.6.6.6 mask=x", b"-n", b"-e \\n", b"$(reboot)`id`;|&<>*?", b"\xff\xfe bad utf-8",
    b"x" * 100_000,
]


@pytest.mark.parametrize("data", VALUES, ids=range(len(VALUES)))
def test_every_value_round_trips_through_the_console(busybox: Path, tmp_path: Path, data: bytes) -> None:
    value = tmp_path / "value"
    value.write_bytes(data)
    script = guest_image.NET_FUNCTIONS + 'emit plain "$1"; emit_b64 always "$1"\n'
    proc = subprocess.run([str(busybox), "sh", "-c", script, "sh", str(value)],  # noqa: S603
                          env={"PATH": str(applet_dir(busybox, tmp_path)), "HVCLOUD_TTY": str(tmp_path / "tty")},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "tty").read_bytes().decode("utf-8", errors="replace")
    meta = guest_console.meta(log)
    exact = data.decode("utf-8", errors="replace")
    assert meta["always"] == exact
    # a plain value may only lose one trailing newline; anything else is base64 and exact
    assert meta["plain"] in (exact, exact.removesuffix("\n"))
    if meta["plain"] != exact:
        assert f"{guest_image.META_MARKER} plain {meta['plain']}" in log.splitlines()
    # a value can never forge another marker line
    assert guest_console.lease(log) is None
    assert len(log.splitlines()) == 2


def test_network_script_gives_up_without_an_interface(busybox: Path, tmp_path: Path) -> None:
    """No eth0 (and no DHCP server): one ``HVCLOUD-LEASE none``, no metadata attempted."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private network namespace")
    bindir = applet_dir(busybox, tmp_path)
    state = tmp_path / "state"
    script = guest_image.NET_SCRIPT.replace("state=/run/hvcloud", f"state={state}").replace(
        "/etc/udhcpc", str(tmp_path / "etc"))
    tty = tmp_path / "tty"
    proc = subprocess.run([str(busybox), "unshare", "--net", str(busybox), "sh", "-c", script],  # noqa: S603
                          env={"PATH": str(bindir), "HVCLOUD_TTY": str(tty)}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    log = tty.read_text()
    assert log.splitlines() == [f"{guest_image.LEASE_MARKER} none"]
    assert guest_console.lease_gave_up(log) and guest_console.lease(log) is None
    assert guest_console.meta(log) == {}


@pytest.mark.parametrize("query,mib", [
    ("mb=2", 2), ("x=1&mb=3", 3), ("mb=2&y=1", 2), ("", 1), ("mb=1;reboot", 1), ("mb=$(id)", 1),
    ("mb=-5", 1), ("mb=" + "9" * 400, 1), ("mb=99999", guest_image.STREAM_MAX_MB),
])
def test_stream_cgi_sends_what_is_asked_within_bounds(busybox: Path, tmp_path: Path, query: str, mib: int) -> None:
    """The guest's ``/cgi-bin/stream``: N MiB of zeros after a CGI header; hostile queries get 1 MiB."""
    if mib > 64:
        # only the header and the count matter: check the capped count without streaming 4 GiB
        script = guest_image.STREAM_CGI.replace('dd if=/dev/zero bs=1048576 count="$mb"', 'echo "$mb"')
    else:
        script = guest_image.STREAM_CGI
    proc = subprocess.run([str(busybox), "sh", "-c", script], env={"PATH": str(applet_dir(busybox, tmp_path)),  # noqa: S603
                          "QUERY_STRING": query}, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    assert head == b"Content-Type: application/octet-stream"
    if mib > 64:
        assert body.strip() == str(mib).encode()
    else:
        assert body == b"\0" * (mib << 20)
