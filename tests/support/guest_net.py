"""A stand-in for the virtual router on a test bridge, for real guests to lease from.

:func:`fake_router` makes a bridge and a network namespace (unique names) joined by a veth pair;
in the namespace, on the network's first address, it runs a plain **dnsmasq** (static leases only:
one per guest MAC, names for extra hosts, no upstream, nothing leaves the namespace) and this
module's small HTTP server (``python -m tests.support.guest_net serve CONFIG``) on port 80 (the
metadata service: ``/latest/meta-data/<key>`` and ``/latest/user-data`` of the asking guest only)
and 8080 (CloudStack's password server: ``DomU_Request: send_my_password`` / ``saved_password``).
Everything is removed on exit, also on failure. The suite and ``bench/guest_lease.py`` share it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hvcloud.network.bridges import Bridges
from tests.support.processes import terminate
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: the cap on request lines/headers the stand-in server reads
MAX_HEADER = 8192


class FakeRouterUnavailable(Exception):
    """This host cannot run the stand-in (no dnsmasq, no ``ip netns``); tests skip on it."""


@dataclass(frozen=True)
class GuestEntry:
    """One guest the stand-in serves: its static lease and what its metadata answers hold."""

    mac: str
    ip: str
    hostname: str
    instance_id: str
    user_data: str = ""
    public_keys: str = ""
    password: str | None = None
    #: False: dnsmasq leases to it, but the metadata and password servers do not know it
    metadata: bool = True


@dataclass
class FakeRouter:
    bridge: str
    netns: str
    address: str
    netmask: str
    domain: str
    workdir: Path
    #: the router's end of the veth pair, inside the namespace (dnsmasq's interface)
    ns_if: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def dnsmasq_log(self) -> Path:
        return self.workdir / "dnsmasq.log"

    def requests(self) -> list[dict[str, str]]:
        """The HTTP requests the stand-in answered: ``client``, ``port``, ``path``, ``request``
        (the ``DomU_Request`` header), ``status``."""
        try:
            text = (self.workdir / "http-requests.jsonl").read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def netns_exec(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command in the router's namespace (for probes from the router's side)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *args],  # noqa: S603
                              capture_output=True, text=True, timeout=timeout, check=False)


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise FakeRouterUnavailable(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


def _dnsmasq_args(router: FakeRouter, veth: str, net: ipaddress.IPv4Network, guests: Sequence[GuestEntry],
                  extra_hosts: Mapping[str, str]) -> list[str]:
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--bind-interfaces", f"--interface={veth}", "--except-interface=lo", "--pid-file",
            f"--dhcp-leasefile={router.workdir / 'leases'}", f"--log-facility={router.dnsmasq_log}",
            "--log-dhcp", "--log-queries", "--user=root", "--dhcp-authoritative", f"--local=/{router.domain}/",
            f"--domain={router.domain}", f"--dhcp-range={net.network_address},static,{net.netmask},1h",
            f"--dhcp-option=option:router,{router.address}", f"--dhcp-option=option:dns-server,{router.address}"]
    for g in guests:
        args.append(f"--dhcp-host={g.mac},{g.ip},{g.hostname},1h")
    for name, ip in extra_hosts.items():
        args.append(f"--host-record={name},{name}.{router.domain},{ip}")
    return args


@contextmanager
def fake_router(workdir: Path, guests: Sequence[GuestEntry], extra_hosts: Mapping[str, str] | None = None, *,
                cidr: str = "10.1.1.0/24", domain: str = "cs1cloud.internal") -> Iterator[FakeRouter]:
    """A bridge + namespace with dnsmasq and the metadata/password server on ``cidr``'s first
    address; yields once both answer. Raises :class:`FakeRouterUnavailable` if this host cannot."""
    if os.geteuid() != 0:
        raise FakeRouterUnavailable("network namespaces and bridges need root")
    if not (shutil.which("dnsmasq") or Path("/usr/sbin/dnsmasq").exists()):
        raise FakeRouterUnavailable("dnsmasq is not installed (scripts/setup installs dnsmasq-base)")
    net = ipaddress.IPv4Network(cidr)
    sfx = uuid.uuid4().hex[:6]
    workdir.mkdir(parents=True, exist_ok=True)
    router = FakeRouter(bridge=f"hvgb{sfx}", netns=f"hvg-{sfx}", address=str(net.network_address + 1),
                        netmask=str(net.netmask), domain=domain, workdir=workdir, ns_if=f"hvgr{sfx}")
    host_end, ns_end = f"hvgh{sfx}", router.ns_if
    bridges = Bridges()
    made_ns = False
    try:
        bridges.ensure_bridge(router.bridge)
        _ip("netns", "add", router.netns)
        made_ns = True
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", router.netns)
        _ip("link", "set", host_end, "master", router.bridge, "up")
        _ip("-n", router.netns, "link", "set", "lo", "up")
        _ip("-n", router.netns, "addr", "add", f"{router.address}/{net.prefixlen}", "dev", ns_end)
        _ip("-n", router.netns, "link", "set", ns_end, "up")
        config = {"address": router.address, "log": str(workdir / "http-requests.jsonl"),
                  "ready": str(workdir / "http-ready"),
                  "guests": {g.ip: asdict(g) for g in guests if g.metadata}}
        (workdir / "http.json").write_text(json.dumps(config))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        with open(workdir / "dnsmasq.stderr", "wb") as err:
            router.procs.append(subprocess.Popen(  # noqa: S603
                ["ip", "netns", "exec", router.netns,
                 *_dnsmasq_args(router, ns_end, net, guests, extra_hosts or {})],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err))
        with open(workdir / "http.stderr", "wb") as err:
            router.procs.append(subprocess.Popen(  # noqa: S603
                ["ip", "netns", "exec", router.netns, sys.executable, "-m", "tests.support.guest_net", "serve",
                 str(workdir / "http.json")], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err))

        def started() -> bool:
            for proc, what in zip(router.procs, ("dnsmasq", "http"), strict=True):
                if proc.poll() is not None:
                    err = (workdir / f"{what}.stderr").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the stand-in router's {what} exited: {err}")
            log = router.dnsmasq_log.read_text(errors="replace") if router.dnsmasq_log.exists() else ""
            return "DHCP, static leases only" in log and (workdir / "http-ready").exists()

        wait_for("the stand-in router's dnsmasq and HTTP server", started, 30, interval=0.1)
        yield router
    finally:
        for proc in router.procs:
            terminate(proc, grace=5)
        if made_ns:
            subprocess.run(["ip", "netns", "del", router.netns], capture_output=True, check=False)  # noqa: S603
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)  # noqa: S603
        bridges.delete(router.bridge)


# --------------------------------------------------------------------------- the HTTP server (in the netns)


class _Handler(BaseHTTPRequestHandler):
    server_version = "hvcloud-test-router"
    guests: dict[str, dict[str, str | None]] = {}
    saved: set[str] = set()
    log_path = ""
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _port(self) -> int:
        return int(self.connection.getsockname()[1])

    def _record(self, status: int) -> None:
        entry = {"client": self.client_address[0], "port": str(self._port()),
                 "path": self.path[:256], "request": (self.headers.get("DomU_Request") or "")[:64],
                 "status": str(status)}
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._record(status)

    def do_GET(self) -> None:
        guest = self.guests.get(self.client_address[0])
        if self._port() == 8080:
            self._password(guest)
            return
        if guest is None:
            self._send(404, "unknown client\n")
            return
        meta = {"instance-id": guest["instance_id"], "local-hostname": guest["hostname"],
                "local-ipv4": guest["ip"], "public-keys": guest["public_keys"]}
        path = self.path.split("?", 1)[0]
        if path == "/latest/user-data":
            self._send(200, guest["user_data"] or "")
        elif path.startswith("/latest/meta-data/") and path[len("/latest/meta-data/"):] in meta:
            self._send(200, meta[path[len("/latest/meta-data/"):]] or "")
        elif path in ("/latest/meta-data", "/latest/meta-data/"):
            self._send(200, "\n".join(sorted(meta)) + "\n")
        else:
            self._send(404, "not found\n")

    def _password(self, guest: dict[str, str | None] | None) -> None:
        """CloudStack's password server: the password once, until the guest acknowledges it."""
        request = self.headers.get("DomU_Request", "")
        ip = self.client_address[0]
        if request == "send_my_password":
            password = guest.get("password") if guest else None
            with self.lock:
                saved = ip in self.saved
            self._send(200, "saved_password" if password is None or saved else password)
        elif request == "saved_password":
            with self.lock:
                self.saved.add(ip)
            self._send(200, "saved_password")
        else:
            self._send(400, "bad_request")


def serve(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    _Handler.guests = config["guests"]
    _Handler.log_path = config["log"]
    servers = [ThreadingHTTPServer((config["address"], port), _Handler) for port in (80, 8080)]
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    Path(config["ready"]).write_text("ready\n")
    servers[0].serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="the stand-in router's metadata and password server")
    ap.add_argument("command", choices=["serve"])
    ap.add_argument("config")
    args = ap.parse_args(argv)
    serve(args.config)


if __name__ == "__main__":
    main()
