"""Finding the router's services again: pid file AND command line; stopping them by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import hvcloud.router.netns as netns_mod
from hvcloud.network.bridges import NetworkError
from hvcloud.router import processes, validation
from hvcloud.router.api import RouterSpec, Segment
from hvcloud.router.netns import PORT, Plumbing, namespace_name, veth_name


def _sleeper(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])  # noqa: S603


def test_a_pid_file_counts_only_with_the_marker_in_the_command_line(tmp_path: Path) -> None:
    pid_file = tmp_path / "svc.pid"
    assert processes.running(pid_file, "--mark") is None
    for junk in ("", "abc", "-1", "0", "99999999999", "12 13", "\x00"):
        pid_file.write_text(junk)
        assert processes.running(pid_file, "--mark") is None
    # a live process that is not ours (this test's own pid) is not taken for the service
    pid_file.write_text(str(os.getpid()))
    assert processes.running(pid_file, "--mark") is None
    proc = _sleeper("--mark")
    try:
        pid_file.write_text(f"{proc.pid}\n")
        assert processes.running(pid_file, "--mark") == proc.pid
        assert processes.running(pid_file, "--other") is None
        assert processes.stop(pid_file, "--mark", grace=5) is True
        assert proc.poll() is not None and not pid_file.exists()
        pid_file.write_text(str(proc.pid))
        assert processes.running(pid_file, "--mark") is None
        assert processes.stop(pid_file, "--mark") is False
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c",
                             "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             "print('ready', flush=True); time.sleep(120)", "--stubborn"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        (tmp_path / "p.pid").write_text(str(proc.pid))
        assert processes.stop(tmp_path / "p.pid", "--stubborn", grace=0.2)
        # stop() collected its exit status (it is our child): it is gone
        assert processes.cmdline(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


def test_log_tail_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert processes.log_tail(log) == ""
    log.write_bytes(b"a" * 100_000 + b"\xff the end")
    tail = processes.log_tail(log)
    assert tail.endswith("the end") and len(tail) <= 2000


class FakeIp:
    """Plays ``ip`` for the plumbing: links per namespace, addresses on eth0; records calls."""

    def __init__(self) -> None:
        self.links: dict[str | None, dict[str, dict[str, object]]] = {None: {"br0": {}}}
        self.addrs: list[str] = []
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        a = list(args)
        self.calls.append(a)
        ns = None
        if a[0] == "-n":
            ns, a = a[1], a[2:]
        if a[:2] == ["netns", "add"]:
            self.links[a[2]] = {"lo": {}}
            return ""
        if a[:3] == ["-j", "link", "show"]:
            link = self.links.get(ns, {}).get(a[-1])
            if link is None:
                raise NetworkError("does not exist")
            return json.dumps([{"ifname": a[-1], **link}])
        if a[:2] == ["link", "add"]:
            self.links[None][a[2]] = {}
            self.links[a[-1]][PORT] = {"address": "aa:aa:aa:aa:aa:aa"}
            return ""
        if a[:3] == ["link", "set", "dev"] and "master" in a:
            self.links[ns][a[3]]["master"] = a[a.index("master") + 1]
        if a[:3] == ["link", "set", "dev"] and "address" in a:
            self.links[ns][a[3]]["address"] = a[-1]
        if a[:4] == ["-j", "-4", "addr", "show"]:
            return json.dumps([{"addr_info": [{"family": "inet", "local": x.split("/")[0],
                                               "prefixlen": int(x.split("/")[1])} for x in self.addrs]}])
        if a[:2] == ["addr", "add"]:
            self.addrs.append(a[2])
        if a[:2] == ["addr", "del"]:
            self.addrs.remove(a[2])
        return ""


def test_plumbing_builds_once_and_then_only_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeIp()
    monkeypatch.setattr(netns_mod, "NETNS_DIR", tmp_path)
    spec = validation.spec(RouterSpec(name="r-1", segment=Segment("br0"), mac="02:00:00:00:00:01",
                                      address="10.1.1.1", prefix=24, domain="d.internal"))

    def run(args: Sequence[str]) -> str:
        out = fake(args)
        if list(args[:2]) == ["netns", "add"]:
            (tmp_path / args[2]).touch()
        return out

    plumbing = Plumbing(run)
    plumbing.ensure(spec, "br0")
    ns, veth = namespace_name("r-1"), veth_name("r-1")
    assert fake.links[None][veth]["master"] == "br0"
    assert fake.links[ns][PORT]["address"] == "02:00:00:00:00:01" and fake.addrs == ["10.1.1.1/24"]
    fake.calls.clear()
    plumbing.ensure(spec, "br0")
    changes = [c for c in fake.calls if "add" in c or "del" in c or "address" in c or "master" in c]
    assert changes == []
    moved = validation.spec(RouterSpec(**{**spec.__dict__, "address": "10.2.2.1", "prefix": 16}))
    plumbing.ensure(moved, "br0")
    assert fake.addrs == ["10.2.2.1/16"]
