"""``hvcloud demo`` really builds a cloud and deploys VMs, as ``./scripts/run`` does: on simulated hosts
(asked for, or the fallback when libvirt is unusable, with the reason printed) and on the real
libvirt host, where the guest's boot marker is reported and no VM outlives the demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.hypervisor.libvirt.config import unusable_reason
from hvcloud.storage import guest_image
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "200"}
URI = "qemu:///system"


def demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hvcloud.cli.main", "demo", *args],  # noqa: S603
                          capture_output=True, text=True, timeout=timeout, env=ENV, check=False)


def run_script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``./scripts/run`` itself (set-up is idempotent; it ends with ``hvcloud demo``)."""
    return subprocess.run([str(ROOT / "scripts" / "run"), *args],  # noqa: S603
                          capture_output=True, text=True, timeout=timeout, env=ENV, check=False)


def vm_rows(out: str, suffix: str = "VM") -> list[str]:
    return [line for line in out.splitlines() if f"-{suffix} " in line and "│" in line]


@pytest.fixture
def libvirt_demo() -> Iterator[str]:
    """An instance-name suffix for a libvirt demo; any domain left with it fails the test and is removed."""
    reason = unusable_reason(URI)
    if reason is not None:
        pytest.skip(reason)
    try:
        guest_image.build()
    except guest_image.GuestBuildError as exc:
        pytest.skip(f"cannot build the test guest: {exc}")
    suffix = f"hvt{uuid.uuid4().hex[:8]}"
    yield suffix
    import libvirt

    conn = libvirt.open(URI)
    try:
        left = [d for d in conn.listAllDomains(0) if d.name().endswith(f"-{suffix}")]
        for dom in left:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    finally:
        conn.close()
    assert not left, f"the demo left domains behind: {[d.name() for d in left]}"


def test_demo_deploys_vms_on_simulated_hosts(tmp_path: Path) -> None:
    port, console_port = free_port(), free_port()
    done = demo("--exit", "--driver", "simulator", "--data-dir", str(tmp_path / "demo"), "--listen",
                f"127.0.0.1:{port}", "--hosts", "2", "--vms", "3", "--console-listen", f"127.0.0.1:{console_port}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "driver: simulator, 2 simulated host(s)" in done.stdout
    rows = vm_rows(done.stdout)
    assert len(rows) == 3 and all("Running" in r for r in rows), done.stdout
    assert f"http://127.0.0.1:{port}/client/api" in done.stdout
    assert f"Web UI:     http://127.0.0.1:{port}/ (user admin" in done.stdout, done.stdout
    # the demo's console proxy registered and the server handed out a console on it
    assert f"http://127.0.0.1:{console_port}/console?token=" in done.stdout, done.stdout
    assert (tmp_path / "demo" / "server" / "hvcloud.db").exists()
    again = demo("--exit", "--data-dir", str(tmp_path / "demo"), "--listen", f"127.0.0.1:{port}", "--hosts", "2",
                 "--vms", "1", "--console-listen", f"127.0.0.1:{free_port()}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "holds a simulator cloud; reusing it" in again.stdout, "auto keeps the data directory's driver"
    assert "host 127." not in again.stdout, "a second run reuses the hosts it added"
    rows = vm_rows(again.stdout)
    assert len(rows) == 1 and "Running" in rows[0], again.stdout
    refused = demo("--exit", "--driver", "libvirt", "--data-dir", str(tmp_path / "demo"))
    assert refused.returncode != 0 and "holds a simulator cloud" in refused.stdout + refused.stderr


def test_scripts_run_falls_back_to_the_simulator_and_says_why(tmp_path: Path) -> None:
    port = free_port()
    done = run_script("--exit", "--data-dir", str(tmp_path / "demo"), "--listen", f"127.0.0.1:{port}",
                      "--libvirt-uri", "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
                      "--console-listen", f"127.0.0.1:{free_port()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "libvirt is not usable here (libvirtd does not answer at qemu+unix:///system" in done.stdout
    assert "falling back to the simulator" in done.stdout and "driver: simulator, 3 simulated host(s)" in done.stdout
    rows = vm_rows(done.stdout)
    assert len(rows) == 3 and all("Running" in r for r in rows), done.stdout
    assert (tmp_path / "demo" / "server" / "hvcloud.db").exists(), "the later --data-dir wins over the script's"


def test_explicit_libvirt_that_cannot_run_is_an_error(tmp_path: Path) -> None:
    done = demo("--exit", "--driver", "libvirt", "--data-dir", str(tmp_path / "demo"), "--libvirt-uri",
                "qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    assert done.returncode == 1
    assert "the libvirt driver cannot run here: libvirtd does not answer" in done.stdout
    assert not (tmp_path / "demo" / "server" / "hvcloud.db").exists(), "nothing was started"


@pytest.mark.libvirt
def test_scripts_run_boots_the_guest_on_libvirt(tmp_path: Path, libvirt_demo: str) -> None:
    port, console_port = free_port(), free_port()
    done = run_script("--exit", "--data-dir", str(tmp_path / "demo"), "--listen", f"127.0.0.1:{port}",
                      "--instance-suffix", libvirt_demo, "--console-listen", f"127.0.0.1:{console_port}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "driver: libvirt at qemu:///system" in done.stdout and "falling back" not in done.stdout
    rows = vm_rows(done.stdout, libvirt_demo)
    assert len(rows) == 1 and "Running" in rows[0], done.stdout
    name = f"i-2-1-{libvirt_demo}"
    assert f"guest {name} booted: {guest_image.BOOT_MARKER} on its serial console" in done.stdout
    assert f"http://127.0.0.1:{console_port}/console?token=" in done.stdout, done.stdout
    assert guest_image.BOOT_MARKER in (tmp_path / "demo" / "agent" / "console" / f"{name}.log").read_text()
    # on the demo's isolated network: the table's address is the one the guest leased from the router
    assert "demo-net" in rows[0], done.stdout
    leased = re.search(rf"guest {name} got (\S+) by DHCP from its network's router, as listed", done.stdout)
    assert leased is not None and leased.group(1).startswith("10.1.1.") and leased.group(1) in rows[0], done.stdout
    assert "stopped 1 VM(s)" in done.stdout


@pytest.mark.libvirt
def test_sigterm_stops_the_libvirt_demo_and_its_vms(tmp_path: Path, libvirt_demo: str) -> None:
    port = free_port()
    out = tmp_path / "demo.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "hvcloud.cli.main", "demo", "--driver", "libvirt",  # noqa: S603
                                 "--data-dir", str(tmp_path / "demo"), "--listen", f"127.0.0.1:{port}",
                                 "--instance-suffix", libvirt_demo], stdout=fh, stderr=subprocess.STDOUT, env=ENV)
    try:
        deadline = time.monotonic() + 400
        while "keeps running" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert "stopped 1 VM(s)" in text and "booted" in text, text
