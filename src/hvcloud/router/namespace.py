"""The virtual router on a Linux host: one network namespace per router, as Neutron runs its DHCP
agent.

Each router gets the namespace ``hvr-<name>`` whose ``eth0`` (the router's MAC and address) is one
end of a veth pair whose other end joins the segment's bridge; inside it run dnsmasq (static DHCP,
DNS for the network domain) and :mod:`hvcloud.router.metadata_service` (metadata on port 80,
passwords on 8080). Everything a router holds is saved under ``state_dir/<name>/``::

    router.json            spec, running or stopped, static leases
    dnsmasq/               dnsmasq.conf, dhcp-hosts, addn-hosts, leases, pid file, log
    metadata/vmdata/       <ip>.json: what the VM at <ip> is served
    metadata/passwords/    <ip>.json: its password until it is delivered
    metadata.pid, metadata.log
    public.json            the public side: addresses and rules (:mod:`hvcloud.router.public`) ...
    public.log             ... and the changes applied since, one JSON line each (folded into
                           public.json every COMPACT_EVERY changes: a change costs what it holds)
    haproxy/               haproxy.cfg, pid file, log (only while the router has load balancers)

The public side (part 2): the first public address makes ``eth1`` (:class:`PublicPlumbing`); the
rules live in one nftables table (:mod:`hvcloud.router.nft`) changed by one transaction per
:meth:`NamespaceRouterHost.apply`; load balancers run in HAProxy (:mod:`hvcloud.router.haproxy`).

A new lease rewrites ``dhcp-hosts``/``addn-hosts`` atomically and sends dnsmasq SIGHUP; it is never
restarted for a VM. :meth:`NamespaceRouterHost.recover` rebuilds a missing namespace, port or address
and starts only the services that are not running (found by pid file and command line).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from hvcloud import logs
from hvcloud.atomic_file import load_json, save_json, write_atomic
from hvcloud.network.bridges import Bridges, NetworkError
from hvcloud.router import nft, processes, release, validation
from hvcloud.router.api import (
    DhcpEntry,
    InvalidRouterRequest,
    PublicState,
    RouterError,
    RouterNotFound,
    RouterSpec,
    RouterStatus,
    RuleChange,
    VmData,
)
from hvcloud.router.book import RouterBook
from hvcloud.router.dnsmasq import DEFAULT_LEASE, DnsmasqPaths, render_conf, render_hosts, render_names
from hvcloud.router.haproxy import HaproxyPaths
from hvcloud.router.haproxy import render as render_haproxy
from hvcloud.router.metadata import files_to_json
from hvcloud.router.metadata_service import METADATA_PORT, PASSWORD_PORT
from hvcloud.router.netns import NETNS_DIR, PORT, Plumbing, PublicPlumbing, namespace_name, veth_name
from hvcloud.router.passwords import FilePasswords
from hvcloud.router.public import PublicBook, Touched, change_to_json, merge

log = logs.get(__name__)

BOOK = "router.json"
#: changes appended to public.log before it is folded into public.json
COMPACT_EVERY = 256


class RouterDir:
    """Where one router's files live."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.book = root / BOOK
        self.dnsmasq = DnsmasqPaths(root / "dnsmasq")
        self.metadata = root / "metadata"
        self.vmdata = self.metadata / "vmdata"
        self.passwords = self.metadata / "passwords"
        self.metadata_pid = root / "metadata.pid"
        self.metadata_log = root / "metadata.log"
        self.public = root / "public.json"
        self.public_log = root / "public.log"
        self.haproxy = HaproxyPaths(root / "haproxy")

    @property
    def dnsmasq_marker(self) -> str:
        return f"--conf-file={self.dnsmasq.conf}"

    @property
    def metadata_marker(self) -> str:
        return str(self.metadata)


def _in_namespace(pid: int, ns: str) -> bool:
    """The process runs in the namespace now named ``ns`` (not in one deleted by hand)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NETNS_DIR / ns).st_ino
    except OSError:
        return False


def _log_lines(path: Path, router: str) -> tuple[list[Any], bool]:
    """The changes saved in public.log, and whether its last line was torn (a crash while
    appending: that line is dropped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], False
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                log.warning("router.public_log_torn", router=router)
                return out, True
            raise RouterError(f"saved public changes of router {router} are unreadable (line {i + 1})") from None
    return out, False


def _replace_if_changed(path: Path, text: str) -> bool:
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data, fsync=False)
    return True


class NamespaceRouterHost:
    """:class:`~hvcloud.router.api.RouterHost` on Linux: needs root, ``ip netns`` and dnsmasq."""

    def __init__(self, state_dir: Path, bridges: Bridges | None = None, *, plumbing: Plumbing | None = None,
                 python: str = sys.executable, dnsmasq: str = "dnsmasq", lease: str = DEFAULT_LEASE,
                 metadata_port: int = METADATA_PORT, password_port: int = PASSWORD_PORT,
                 public_plumbing: PublicPlumbing | None = None, nft_binary: str = "nft",
                 haproxy: str = "haproxy") -> None:
        self.state_dir = state_dir
        self._bridges = bridges or Bridges()
        self._plumbing = plumbing or Plumbing()
        self._python = python
        self._dnsmasq = dnsmasq
        self._lease = lease
        self._ports = (metadata_port, password_port)
        self._books: dict[str, RouterBook] = {}
        self._public_plumbing = public_plumbing or PublicPlumbing()
        self._nft = nft.Nft(nft_binary)
        self._haproxy = haproxy
        self._publics: dict[str, PublicBook] = {}
        self._log_counts: dict[str, int] = {}
        #: firewall rule id -> nft rule handle, per router (read again after each full load)
        self._handles: dict[str, dict[str, int]] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        #: metadata services this process started, kept so their exit is collected
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _lock(self, name: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(name, threading.RLock())

    def _dir(self, name: str) -> RouterDir:
        return RouterDir(self.state_dir / validation.router_name(name))

    def _find(self, name: str) -> RouterBook | None:
        book = self._books.get(name)
        if book is None:
            try:
                data = load_json(self._dir(name).book, None)
            except ValueError as exc:
                raise RouterError(f"saved state of router {name} is unreadable: {exc}") from exc
            if data is None:
                return None
            book = self._books[name] = RouterBook.from_json(data)
        return book

    def _book(self, name: str) -> RouterBook:
        book = self._find(name)
        if book is None:
            raise RouterNotFound(name)
        return book

    def _save(self, book: RouterBook) -> None:
        save_json(self._dir(book.spec.name).book, book.to_json())
        self._books[book.spec.name] = book

    def _status(self, book: RouterBook) -> RouterStatus:
        d = self._dir(book.spec.name)
        dns_pid = processes.running(d.dnsmasq.pid, d.dnsmasq_marker)
        md_pid = processes.running(d.metadata_pid, d.metadata_marker)
        details = {"namespace": namespace_name(book.spec.name), "veth": veth_name(book.spec.name),
                   "dnsmasq_pid": str(dns_pid or ""), "metadata_pid": str(md_pid or "")}
        pub = self._publics.get(book.spec.name)
        if pub is not None:
            details.update(public_addresses=str(len(pub.addresses)), rules=str(pub.rules()))
        return RouterStatus(name=book.spec.name, state="Running" if book.running else "Stopped",
                            spec=book.spec, leases=len(book.entries), details=details)

    # -- services ------------------------------------------------------------------------------

    def _write_dns_files(self, book: RouterBook) -> bool:
        d = self._dir(book.spec.name)
        entries = list(book.entries.values())
        hosts = _replace_if_changed(d.dnsmasq.hosts, render_hosts(entries))
        names = _replace_if_changed(d.dnsmasq.names, render_names(book.spec, entries))
        return hosts or names

    def _live(self, pid_file: Path, marker: str, ns: str) -> int | None:
        pid = processes.running(pid_file, marker)
        if pid is not None and not _in_namespace(pid, ns):
            log.warning("router.service_in_stale_namespace", pid=pid, namespace=ns)
            processes.stop(pid_file, marker)
            return None
        return pid

    def _start_dnsmasq(self, book: RouterBook) -> None:
        d, ns = self._dir(book.spec.name), namespace_name(book.spec.name)
        d.dnsmasq.pid.unlink(missing_ok=True)
        proc = processes.spawn(["ip", "netns", "exec", ns, self._dnsmasq, d.dnsmasq_marker], d.dnsmasq.log)
        try:
            processes.wait_started(d.dnsmasq.pid, d.dnsmasq_marker, proc, d.dnsmasq.log, "dnsmasq",
                                   daemonizes=True)
        finally:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._children[proc.pid] = proc

    def _start_metadata(self, book: RouterBook) -> None:
        d, ns = self._dir(book.spec.name), namespace_name(book.spec.name)
        d.metadata_pid.unlink(missing_ok=True)
        d.vmdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = ["ip", "netns", "exec", ns, self._python, "-m", "hvcloud.router.metadata_service",
                "--dir", d.metadata_marker, "--address", book.spec.address, "--pid-file", str(d.metadata_pid),
                "--metadata-port", str(self._ports[0]), "--password-port", str(self._ports[1])]
        proc = processes.spawn(argv, d.metadata_log)
        self._children[proc.pid] = proc
        try:
            processes.wait_started(d.metadata_pid, d.metadata_marker, proc, d.metadata_log, "metadata service")
        except RouterError:
            processes.stop(d.metadata_pid, d.metadata_marker)
            raise

    def _bring_up(self, book: RouterBook, restart: bool) -> list[str]:
        """Port, files and services; returns the services it (re)started."""
        spec, d = book.spec, self._dir(book.spec.name)
        ns = namespace_name(spec.name)
        try:
            bridge = self._bridges.ensure_segment(spec.segment.trunk, spec.segment.vlan, spec.segment.vxlan)
        except NetworkError as exc:
            raise RouterError(f"router {spec.name}: no segment bridge: {exc}") from exc
        self._plumbing.ensure(spec, bridge)
        d.dnsmasq.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf_changed = _replace_if_changed(d.dnsmasq.conf, render_conf(spec, d.dnsmasq, PORT, self._lease))
        files_changed = self._write_dns_files(book)
        if restart or conf_changed:
            processes.stop(d.dnsmasq.pid, d.dnsmasq_marker)
        if restart:
            processes.stop(d.metadata_pid, d.metadata_marker)
        started = []
        pid = self._live(d.dnsmasq.pid, d.dnsmasq_marker, ns)
        if pid is None:
            self._start_dnsmasq(book)
            started.append("dnsmasq")
        elif files_changed:
            processes.reload(pid)
        if self._live(d.metadata_pid, d.metadata_marker, ns) is None:
            self._start_metadata(book)
            started.append("metadata")
        self._bring_up_public(book)
        if started:
            log.info("router.services_started", router=spec.name, services=started)
        return started

    def _release(self, book: RouterBook, old: DhcpEntry) -> None:
        """Drop dnsmasq's lease of a withdrawn entry now (its name and address are free at once)."""
        d = self._dir(book.spec.name)
        if not release.has_lease(d.dnsmasq.leases, old.mac, old.ip):
            return
        argv = ["ip", "netns", "exec", namespace_name(book.spec.name), self._python, "-m", "hvcloud.router.release",
                "--server", book.spec.address, "--ip", old.ip, "--mac", old.mac, "--interface", PORT]
        client_id = release.lease_client_id(d.dnsmasq.leases, old.mac, old.ip)
        if client_id:
            argv += ["--client-id", client_id.hex()]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        if proc.returncode != 0:
            log.warning("router.release_failed", router=book.spec.name, mac=old.mac, ip=old.ip,
                        error=proc.stderr.strip()[-300:])

    def _tear_down(self, name: str) -> None:
        d = self._dir(name)
        processes.stop(d.dnsmasq.pid, d.dnsmasq_marker)
        processes.stop(d.metadata_pid, d.metadata_marker)
        processes.stop(d.haproxy.pid, d.haproxy.marker)
        self._handles.pop(name, None)
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]
        self._public_plumbing.remove(name)
        self._plumbing.remove(name)

    # -- the public side ------------------------------------------------------------------------

    def _public(self, book: RouterBook) -> PublicBook:
        name = book.spec.name
        pub = self._publics.get(name)
        if pub is None:
            d = self._dir(name)
            try:
                data = load_json(d.public, None)
            except ValueError as exc:
                raise RouterError(f"saved public state of router {name} is unreadable: {exc}") from exc
            changes, torn = _log_lines(d.public_log, name)
            pub = self._publics[name] = PublicBook.from_json(book.spec, data, changes)
            self._log_counts[name] = len(changes)
            if torn:
                # fold now, so the next append does not land after the torn line
                save_json(d.public, pub.to_json(), fsync=False)
                d.public_log.unlink(missing_ok=True)
                self._log_counts[name] = 0
        return pub

    def _save_public(self, name: str, change: RuleChange, new: PublicBook) -> None:
        """Append the change to public.log; fold the log into public.json now and then."""
        d = self._dir(name)
        count = self._log_counts.get(name, 0) + 1
        if count > COMPACT_EVERY:
            save_json(d.public, new.to_json(), fsync=False)
            d.public_log.unlink(missing_ok=True)
            count = 0
        else:
            with d.public_log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(change_to_json(change), separators=(",", ":")) + "\n")
        self._log_counts[name] = count

    def _public_port(self, book: RouterBook, pub: PublicBook) -> None:
        """eth1 as the book says: made by the first address, removed with the last."""
        name = book.spec.name
        if not pub.addresses:
            self._public_plumbing.remove(name)
            return
        first = next(iter(pub.addresses.values()))
        gateway = (pub.source_nat() or first).gateway
        seg = first.segment
        try:
            bridge = self._bridges.ensure_segment(seg.trunk, seg.vlan, seg.vxlan)
        except NetworkError as exc:
            raise RouterError(f"router {name}: no public segment bridge: {exc}") from exc
        addrs = [ipaddress.IPv4Interface(f"{a.ip}/{a.prefix}") for a in pub.addresses.values()]
        self._public_plumbing.ensure(name, bridge, first.mac, addrs, gateway)

    def _load_full(self, book: RouterBook, pub: PublicBook) -> None:
        ns = namespace_name(book.spec.name)
        self._nft.load(ns, nft.full(book.spec, pub))
        self._handles[book.spec.name] = self._nft.handles(ns)

    def _load_delta(self, book: RouterBook, old: PublicBook, new: PublicBook, touched: Touched) -> None:
        """One nft transaction of what the change touched. Added firewall rules are loaded without
        echo (nft's echo reads the whole table back); their handles are read, one bucket chain at a
        time, only when one of them is removed or replaced."""
        name, ns = book.spec.name, namespace_name(book.spec.name)
        handles = self._handles.get(name)
        if handles is None:
            self._load_full(book, new)
            return
        try:
            unknown = {nft.firewall_rule(old.firewall[rid])[0] for rid in touched.firewall
                       if rid in old.firewall and old.firewall[rid] != new.firewall.get(rid) and rid not in handles}
            for chain in sorted(unknown):
                handles.update(self._nft.handles(ns, chain))
            d = nft.delta(book.spec, old, new, touched, handles)
            self._nft.load(ns, "\n".join(d.commands) + "\n")
        except (KeyError, RouterError) as exc:
            # the kernel's table is not what the book says (flushed by hand, handles lost): one
            # full load puts it right
            log.warning("router.nft_full_reload", router=name, reason=str(exc)[:300])
            self._load_full(book, new)
            return
        for rid in d.removed_rules:
            handles.pop(rid, None)

    def _load_balancers(self, book: RouterBook, pub: PublicBook) -> None:
        """HAProxy runs with the book's LB rules (stopped when there are none); a new set starts a
        new HAProxy with ``-sf``: the old one hands over and finishes its connections."""
        d, ns = self._dir(book.spec.name), namespace_name(book.spec.name)
        hp = d.haproxy
        if not pub.balancers:
            processes.stop(hp.pid, hp.marker)
            hp.conf.unlink(missing_ok=True)
            return
        hp.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        changed = _replace_if_changed(hp.conf, render_haproxy(pub.balancers.values()))
        old = self._live(hp.pid, hp.marker, ns)
        if old is not None and not changed:
            return
        check = subprocess.run([self._haproxy, "-c", "-q", "-f", str(hp.conf)], capture_output=True,  # noqa: S603
                               text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RouterError(f"haproxy refused its configuration: {(check.stdout + check.stderr).strip()[-600:]}")
        argv = ["ip", "netns", "exec", ns, self._haproxy, "-f", hp.marker, "-p", str(hp.pid), "-D"]
        if old is not None:
            argv += ["-sf", str(old)]
        hp.pid.unlink(missing_ok=True)
        proc = processes.spawn(argv, hp.log)
        try:
            processes.wait_started(hp.pid, hp.marker, proc, hp.log, "haproxy", daemonizes=True)
        except RouterError:
            if old is not None:
                hp.pid.write_text(f"{old}\n")
            raise
        finally:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._children[proc.pid] = proc

    def _bring_up_public(self, book: RouterBook) -> None:
        """At start and recover: eth1, the whole table, HAProxy. A router without a public side
        gets none of them (it needs no nft then, and its namespace does not forward)."""
        pub = self._public(book)
        self._public_port(book, pub)
        if pub.empty():
            # (the first change loads the whole table: there are no handles to go by)
            self._handles.pop(book.spec.name, None)
            try:
                self._nft.delete_table(namespace_name(book.spec.name))
            except (RouterError, OSError) as exc:
                log.debug("router.no_public_table", router=book.spec.name, reason=str(exc)[:200])
        else:
            self._load_full(book, pub)
        self._load_balancers(book, pub)

    # -- RouterHost ----------------------------------------------------------------------------

    def start(self, spec: RouterSpec) -> RouterStatus:
        spec = validation.spec(spec)
        with self._lock(spec.name):
            book = self._find(spec.name)
            restart = False
            if book is None:
                book = RouterBook(spec)
            elif book.spec != spec:
                dropped = book.reconfigure(spec)
                restart = True
                log.info("router.reconfigured", router=spec.name, dropped=[e.mac for e in dropped])
            book.running = True
            self._save(book)
            try:
                self._bring_up(book, restart)
            except RouterError:
                # nothing half-made stays behind, and recover() will not retry it: the management
                # server sees the failed start and decides
                book.running = False
                self._save(book)
                self._tear_down(spec.name)
                raise
            log.info("router.started", router=spec.name, namespace=namespace_name(spec.name))
            return self._status(book)

    def stop(self, name: str) -> None:
        with self._lock(name):
            book = self._find(name)
            if book is not None and book.running:
                book.running = False
                self._save(book)
            self._tear_down(name)
            log.info("router.stopped", router=name)

    def destroy(self, name: str) -> None:
        with self._lock(name):
            d = self._dir(name)
            self._tear_down(name)
            shutil.rmtree(d.root, ignore_errors=True)
            self._books.pop(name, None)
            self._publics.pop(name, None)
            self._log_counts.pop(name, None)
            log.info("router.destroyed", router=name)

    def status(self, name: str) -> RouterStatus:
        with self._lock(name):
            return self._status(self._book(name))

    def routers(self) -> list[RouterStatus]:
        out = []
        for child in sorted(self.state_dir.iterdir()):
            if (child / BOOK).is_file():
                try:
                    out.append(self.status(child.name))
                except (RouterError, InvalidRouterRequest) as exc:
                    log.warning("router.unreadable", router=child.name, error=str(exc))
        return out

    def dhcp_entry(self, name: str, entry: DhcpEntry, *, remove: bool = False) -> None:
        with self._lock(name):
            book = self._book(name)
            checked = validation.entry(book.spec, entry)
            released = book.remove_entry(checked) if remove else book.set_entry(checked)
            if released is None:
                return
            self._save(book)
            d = self._dir(name)
            if self._write_dns_files(book) and book.running:
                pid = processes.running(d.dnsmasq.pid, d.dnsmasq_marker)
                if pid is not None:
                    processes.reload(pid)
                    for old in released:
                        self._release(book, old)
            log.info("router.dhcp_entry", router=name, mac=checked.mac, ip=checked.ip, remove=remove)

    def vm_data(self, name: str, ip: str, data: VmData) -> None:
        with self._lock(name):
            book = self._book(name)
            addr = validation.address_in(book.spec, ip)
            files = validation.vm_data(data)
            path = self._dir(name).vmdata / f"{addr}.json"
            if files.files:
                save_json(path, files_to_json(files))
            else:
                path.unlink(missing_ok=True)
            log.info("router.vm_data", router=name, ip=addr, files=sum(len(f) for f in files.files.values()))

    def save_password(self, name: str, ip: str, password: str) -> None:
        with self._lock(name):
            book = self._book(name)
            addr = validation.address_in(book.spec, ip)
            FilePasswords(self._dir(name).passwords).save(addr, validation.password(password))
            log.info("router.password_saved", router=name, ip=addr)

    def apply(self, name: str, change: RuleChange) -> PublicState:
        with self._lock(name):
            book = self._book(name)
            old = self._public(book)
            new, touched = merge(book.spec, old, change)
            if book.running:
                try:
                    if touched.addresses:
                        self._public_port(book, new)
                    self._load_delta(book, old, new, touched)
                    if touched.balancers:
                        self._load_balancers(book, new)
                except RouterError:
                    # put back what the book still says, then report
                    try:
                        self._bring_up_public(book)
                    except RouterError as again:
                        log.error("router.public_restore_failed", router=name, error=str(again)[:300])
                    raise
            self._save_public(name, change, new)
            self._publics[name] = new
            log.info("router.public_applied", router=name, addresses=len(new.addresses),
                     forwards=len(new.forwards), statics=len(new.statics), firewall=len(new.firewall),
                     balancers=len(new.balancers))
            return new.state()

    def public_state(self, name: str) -> PublicState:
        with self._lock(name):
            return self._public(self._book(name)).state()

    def recover(self) -> list[str]:
        recovered = []
        for child in sorted(self.state_dir.iterdir()):
            if not (child / BOOK).is_file():
                continue
            name = child.name
            try:
                with self._lock(name):
                    book = self._book(name)
                    if not book.running:
                        continue
                    started = self._bring_up(book, restart=False)
                recovered.append(name)
                log.info("router.recovered", router=name, restarted=started)
            except (RouterError, InvalidRouterRequest) as exc:
                log.error("router.recover_failed", router=name, error=str(exc))
        return recovered
