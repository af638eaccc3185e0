"""A tiny bootable test guest built from Debian packages, without touching the host's /boot.

The newest ``linux-image-*-cloud-amd64`` and ``busybox-static`` are fetched with ``apt-get
download`` into a cache directory and unpacked with ``dpkg-deb -x``. A busybox initramfs (written as
a ``newc`` cpio archive here, so no device nodes are created on the host) loads the virtio modules,
prints :data:`BOOT_MARKER` on the serial console, powers off on the ACPI power button (printing
:data:`POWEROFF_MARKER`), brings up ``eth0`` and then reports the block
devices it sees whenever they change (``HVCLOUD-GUEST-DISKS vda vdb``), so tests can watch hot-plug
from inside the guest. Meanwhile, in the background (so a guest without any DHCP server boots as
fast as before), :data:`NET_SCRIPT` asks for a lease with busybox ``udhcpc``, reports it
(:data:`LEASE_MARKER`), fetches the instance's metadata, user data, public keys and password from
the DHCP server the way CloudStack's guest scripts do (:data:`META_MARKER` lines) and runs user data
that starts with ``#!/bin/sh`` (:data:`SCRIPT_MARKER` lines). After the lease it starts busybox
``httpd`` on port 80 (:data:`HTTPD_MARKER`): ``/`` names the guest and its address, and
``/cgi-bin/stream?mb=N`` streams N MiB of zeros. ``tests/support/guest_console.py``
parses those lines. The kernel and initramfs go onto a FAT disk made bootable by ``syslinux
--install`` and filled with ``mcopy`` (no mounting), written as raw, qcow2 and VHD.

Results are cached by content (package versions plus this builder's inputs), so repeated runs
return at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hvcloud import logs
from hvcloud.storage import qemu_img

log = logs.get(__name__)

BOOT_MARKER = "HVCLOUD-GUEST-BOOTED"
NET_MARKER = "HVCLOUD-GUEST-NET"
DISKS_MARKER = "HVCLOUD-GUEST-DISKS"
POWEROFF_MARKER = "HVCLOUD-GUEST-POWEROFF"
#: ``HVCLOUD-NICUP t=<uptime>``: eth0 is up, DHCP starts
NICUP_MARKER = "HVCLOUD-NICUP"
#: ``HVCLOUD-LEASE ip=.. mask=.. router=.. dns=a,b domain=.. host=.. server=.. t=<uptime>`` or ``HVCLOUD-LEASE none``
LEASE_MARKER = "HVCLOUD-LEASE"
#: ``HVCLOUD-META <key> <value>``, ``HVCLOUD-META <key>-b64 <base64>`` or ``HVCLOUD-META error <key>``
META_MARKER = "HVCLOUD-META"
#: ``HVCLOUD-SCRIPT <line>``: one line of output of a ``#!/bin/sh`` user data script
SCRIPT_MARKER = "HVCLOUD-SCRIPT"
#: ``HVCLOUD-SCRIPT-DONE rc=<exit status>``
SCRIPT_DONE_MARKER = "HVCLOUD-SCRIPT-DONE"
#: ``HVCLOUD-HTTPD port=80 ip=<address>``: the guest's HTTP server runs (after the lease)
HTTPD_MARKER = "HVCLOUD-HTTPD"
#: written in a box on the VGA console (``/dev/tty0``) at boot, with the guest's hostname, so that a
#: screenshot or a VNC session shows a known picture (the serial console stays ``/dev/console``)
CONSOLE_MARKER = "HVCLOUD-CONSOLE"
#: the box's rows on the VGA text screen (from the top) and its width in characters
CONSOLE_BOX_ROWS = 8
CONSOLE_BOX_COLUMNS = 64
#: the guest's HTTP server: ``/`` is ``<hostname> <address>`` (so a load balancer test can tell
#: backends apart), ``/cgi-bin/stream?mb=N`` streams N MiB of zeros (at most :data:`STREAM_MAX_MB`)
HTTPD_PORT = 80
STREAM_MAX_MB = 4096
#: the metadata the guest fetches from ``http://<DHCP server>/``: (marker key, path); values that
#: are not one plain token are printed base64-encoded under ``<key>-b64``
META_PATHS = (
    ("instance-id", "/latest/meta-data/instance-id"),
    ("local-hostname", "/latest/meta-data/local-hostname"),
    ("local-ipv4", "/latest/meta-data/local-ipv4"),
    ("public-keys", "/latest/meta-data/public-keys"),
    ("user-data", "/latest/user-data"),
)
#: keys always printed base64-encoded (``<key>-b64``)
META_ALWAYS_B64 = ("public-keys", "user-data")
#: CloudStack's password server port on the router, and the header its guest script sends
PASSWORD_PORT = 8080
PASSWORD_HEADER = "DomU_Request"
BUILDER_VERSION = "5"
DISK_SIZE = 64 * 1024 * 1024
#: modules the guest needs (with their dependencies): virtio PCI transport, disks, network, and the
#: ACPI power button (so a graceful shutdown request powers the guest off)
ROOT_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "button", "evdev")
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m.ko 2>/dev/null; done
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho {POWEROFF_MARKER} > /dev/ttyS0\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
mkdir -p /var/log /var/run
acpid -c /etc/acpi -l /tmp/acpid.log -p /tmp/acpid.pid
echo {BOOT_MARKER} > /dev/ttyS0
if [ -c /dev/tty0 ]; then
  bar=$(printf '%{CONSOLE_BOX_COLUMNS}s' '' | tr ' ' '#')
  {{
    printf '\\033[2J\\033[H%s\\n' "$bar"
    for i in 1 2 3 4 5 6; do printf '## %-{CONSOLE_BOX_COLUMNS - 6}s ##\\n' "{CONSOLE_MARKER} $(hostname)"; done
    printf '%s\\n' "$bar"
  }} > /dev/tty0 2>/dev/null
fi
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  echo "{NET_MARKER} eth0 up $(cat /sys/class/net/eth0/address)" > /dev/ttyS0
  echo "{NICUP_MARKER} t=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
  /bin/hvcloud-net < /dev/null > /dev/null 2>&1 &
else
  echo "{NET_MARKER} no-eth0" > /dev/ttyS0
fi
last=""
while true; do
  now=$(ls /sys/block | grep -v '^loop' | tr '\\n' ' ')
  if [ "$now" != "$last" ]; then echo "{DISKS_MARKER} $now" > /dev/ttyS0; last="$now"; fi
  sleep 1
done
"""

#: the udhcpc event script (``/etc/udhcpc/default.script`` in the guest): applies the lease to the
#: interface, the default route, /etc/resolv.conf and the hostname, and records the first lease
DHCP_SCRIPT = r"""#!/bin/sh
# udhcpc runs this with deconfig|bound|renew|leasefail|nak and the lease in its environment
state=/run/hvcloud
case "$1" in
deconfig)
  ip -4 addr flush dev "$interface"
  ip link set "$interface" up
  ;;
bound|renew)
  ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
  gw=""
  for r in $router; do gw="$r"; break; done
  [ -n "$gw" ] && ip route replace default via "$gw" dev "$interface"
  {
    [ -n "$domain" ] && echo "search $domain"
    for d in $dns; do echo "nameserver $d"; done
  } > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf
  [ -n "$hostname" ] && hostname "$hostname"
  if [ ! -e "$state/lease" ]; then
    t=$(cut -d' ' -f1 /proc/uptime)
    dl=$(echo $dns | tr ' ' ',')
    echo "ip=$ip mask=$subnet router=$gw dns=$dl domain=$domain host=$hostname server=$serverid t=$t" \
      > "$state/lease.new" && mv "$state/lease.new" "$state/lease"
  fi
  ;;
esac
exit 0
"""

#: the shell functions :data:`NET_SCRIPT` prints with (``say`` writes to ``$HVCLOUD_TTY``, default
#: ttyS0), apart so that tests can run them alone
NET_FUNCTIONS = r"""say() { echo "$*" >> "${HVCLOUD_TTY:-/dev/ttyS0}"; }
# a value on one line: plain when the file is one safe token (and maybe a newline), else base64
# of the exact bytes under <key>-b64
emit() {
  v=$(cat "$2")
  case "$v" in
    *[!A-Za-z0-9._:@/+=,_-]*) ;;
    *) if printf '%s' "$v" | cmp -s - "$2" || printf '%s\n' "$v" | cmp -s - "$2"; then
         say "@META@ $1 $v"; return; fi ;;
  esac
  say "@META@ $1-b64 $(base64 -w 0 "$2")"
}
emit_b64() { say "@META@ $1-b64 $(base64 -w 0 "$2")"; }
"""

#: ``/bin/hvcloud-net``, started in the background by init once eth0 is up: DHCP, then metadata,
#: password and user data from the DHCP server (CloudStack's virtual router), all reported on ttyS0.
#: The password is acknowledged (``saved_password``) as CloudStack's cloud-set-guest-password does.
NET_SCRIPT = r"""#!/bin/sh
state=/run/hvcloud
mkdir -p "$state" /etc/udhcpc
@FUNCTIONS@# (this busybox's wget has no -T: it crashes on it; every fetch runs under timeout instead)
# a few quick discovers, then udhcpc keeps trying and renewing in the background
udhcpc -i eth0 -s /etc/udhcpc/default.script -t 5 -T 2 -A 5 -b -p "$state/udhcpc.pid" \
  > "$state/udhcpc.log" 2>&1
if [ ! -s "$state/lease" ]; then
  say "@LEASE@ none"
  exit 0
fi
say "@LEASE@ $(cat "$state/lease")"
addr=$(sed -n 's/^ip=\([0-9.]*\) .*/\1/p' "$state/lease")
echo "$(hostname) $addr" > /www/index.html
if httpd -p @HTTPDPORT@ -h /www; then say "@HTTPD@ port=@HTTPDPORT@ ip=$addr"; else say "@HTTPD@ failed"; fi
srv=$(sed -n 's/.* server=\([0-9.]*\) .*/\1/p' "$state/lease")
[ -n "$srv" ] || srv=$(sed -n 's/.* router=\([0-9.]*\) .*/\1/p' "$state/lease")
[ -n "$srv" ] || { say "@META@ error server"; exit 0; }
@FETCHES@
rm -f "$state/pw"
if timeout 10 wget -q -O "$state/pw" --header "@PWHEADER@: send_my_password" "http://$srv:@PWPORT@/" 2>/dev/null; then
  emit password "$state/pw"
  case "$(cat "$state/pw")" in
    ""|saved_password|bad_request) ;;
    *) timeout 10 wget -q -O /dev/null --header "@PWHEADER@: saved_password" "http://$srv:@PWPORT@/" 2>/dev/null ;;
  esac
else
  say "@META@ error password"
fi
ud="$state/meta.user-data"
if [ -s "$ud" ]; then
  case "$(head -n 1 "$ud")" in
    '#!/bin/sh'|'#!/bin/sh '*)
      cp "$ud" "$state/user-data.sh"
      { timeout 300 sh "$state/user-data.sh" < /dev/null 2>&1; echo $? > "$state/script.rc"; } |
        while IFS= read -r line || [ -n "$line" ]; do say "@SCRIPT@ $line"; done
      say "@SCRIPTDONE@ rc=$(cat "$state/script.rc")"
      ;;
  esac
fi
"""


def _fetch_lines() -> str:
    lines = []
    for key, path in META_PATHS:
        out = f'"$state/meta.{key}"'
        emit = "emit_b64" if key in META_ALWAYS_B64 else "emit"
        lines.append(f'if timeout 10 wget -q -O {out} "http://$srv{path}" 2>/dev/null; then {emit} {key} {out}; '
                     f'else rm -f {out}; say "@META@ error {key}"; fi')
    return "\n".join(lines)


def _fill(script: str) -> str:
    for placeholder, value in (("@FUNCTIONS@", NET_FUNCTIONS), ("@FETCHES@", _fetch_lines()),
                               ("@META@", META_MARKER), ("@LEASE@", LEASE_MARKER),
                               ("@SCRIPTDONE@", SCRIPT_DONE_MARKER), ("@SCRIPT@", SCRIPT_MARKER),
                               ("@PWHEADER@", PASSWORD_HEADER), ("@PWPORT@", str(PASSWORD_PORT)),
                               ("@HTTPD@", HTTPD_MARKER), ("@HTTPDPORT@", str(HTTPD_PORT)),
                               ("@STREAMMAX@", str(STREAM_MAX_MB))):
        script = script.replace(placeholder, value)
    return script


#: ``/www/cgi-bin/stream`` (busybox httpd CGI): ``?mb=N`` streams N MiB of zeros, for throughput
#: benches; anything but 1-5 digits is 1 MiB
STREAM_CGI = r"""#!/bin/sh
mb=$(echo "$QUERY_STRING" | sed -n 's/^\(.*&\)\{0,1\}mb=\([0-9]\{1,5\}\)\(&.*\)\{0,1\}$/\2/p')
[ -n "$mb" ] || mb=1
[ "$mb" -le @STREAMMAX@ ] || mb=@STREAMMAX@
printf 'Content-Type: application/octet-stream\r\n\r\n'
dd if=/dev/zero bs=1048576 count="$mb" 2>/dev/null
"""

NET_FUNCTIONS = _fill(NET_FUNCTIONS)
NET_SCRIPT = _fill(NET_SCRIPT)
STREAM_CGI = _fill(STREAM_CGI)
#: files the initramfs holds besides ``/init`` and busybox: path -> (text, mode)
GUEST_FILES: dict[str, tuple[str, int]] = {
    "etc/udhcpc/default.script": (DHCP_SCRIPT, 0o755),
    "bin/hvcloud-net": (NET_SCRIPT, 0o755),
    "www/cgi-bin/stream": (STREAM_CGI, 0o755),
}

SYSLINUX_CFG = """DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0 quiet panic=-1
"""


class GuestBuildError(Exception):
    pass


@dataclass(frozen=True)
class GuestImage:
    raw: Path
    qcow2: Path
    vhd: Path
    kernel_package: str


def _run(args: Sequence[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise GuestBuildError(f"{args[0]} is not installed (scripts/setup installs it)") from None
    if proc.returncode != 0:
        raise GuestBuildError(f"{' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hvcloud" / "guest"


# --------------------------------------------------------------------------- packages


def _abi_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def newest_kernel_package() -> str:
    """The cloud kernel the meta-package points at, or the highest-numbered one available."""
    out = _run(["apt-cache", "depends", KERNEL_META])
    deps = re.findall(r"Depends:\s*(linux-image-[0-9][\w.+-]*-cloud-amd64)\s*$", out, re.M)
    if deps:
        return str(max(deps, key=_abi_key))
    found = _run(["apt-cache", "search", "--names-only", r"^linux-image-[0-9].*-cloud-amd64$"])
    names = [line.split(" ", 1)[0] for line in found.splitlines()]
    names = [n for n in names if re.fullmatch(r"linux-image-[0-9][\w.+-]*-cloud-amd64", n)]
    if not names:
        raise GuestBuildError("no linux-image-*-cloud-amd64 package is known to apt; run apt-get update")
    return max(names, key=_abi_key)


def download(package: str, debs: Path) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    existing = sorted(debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    _run(["apt-get", "download", "-q", package], cwd=debs)
    got = sorted(debs.glob(f"{package}_*.deb"))
    if not got:
        raise GuestBuildError(f"apt-get download {package} produced no .deb")
    return got[-1]


# --------------------------------------------------------------------------- initramfs


def module_depends(data: bytes) -> list[str]:
    """The ``depends=`` entry of a kernel module's .modinfo strings."""
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", data)
    if not m or not m.group(1):
        return []
    return [d.decode() for d in m.group(1).split(b",") if d]


def _module_index(modroot: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for p in modroot.rglob("*.ko*"):
        name = p.name.split(".ko")[0]
        index.setdefault(name.replace("-", "_"), p)
    return index


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise GuestBuildError(f"{path.name}: zstd-compressed modules are not supported")
    return data


def resolve_modules(roots: Iterable[str], index: dict[str, Path]) -> list[tuple[str, bytes]]:
    """The modules to load, dependencies first. Built-in modules (absent from ``index``) are
    skipped."""
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, depth: int) -> None:
        key = name.replace("-", "_")
        if key in seen or depth > 32:
            return
        seen.add(key)
        path = index.get(key)
        if path is None:
            return
        data = _module_bytes(path)
        for dep in module_depends(data):
            visit(dep, depth + 1)
        order.append((key, data))

    for root in roots:
        visit(root, 0)
    return order


class CpioWriter:
    """A minimal ``newc`` cpio archive writer (the format the kernel unpacks as initramfs)."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name_b = name.encode() + b"\x00"
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
        self._ino += 1
        header = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
        self._buf.write(header + name_b)
        self._buf.write(b"\x00" * (-(len(header) + len(name_b)) % 4))
        self._buf.write(data)
        self._buf.write(b"\x00" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self._buf.write(b"\x00" * (-self._buf.tell() % 512))
        return self._buf.getvalue()


def build_initramfs(busybox: bytes, modules: Sequence[tuple[str, bytes]], init: str = INIT_SCRIPT,
                    files: Mapping[str, tuple[str, int]] = GUEST_FILES) -> bytes:
    cpio = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "etc", "etc/udhcpc", "run", "www",
              "www/cgi-bin"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.chardev("dev/ttyS0", 4, 64)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", init.encode(), 0o755)
    for path, (text, mode) in sorted(files.items()):
        cpio.file(path, text.encode(), mode)
    for name, data in modules:
        cpio.file(f"lib/modules/{name}.ko", data)
    cpio.file("lib/modules/load-order", "".join(f"{n}\n" for n, _ in modules).encode())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


# --------------------------------------------------------------------------- the disk


def make_boot_disk(raw: Path, kernel: Path, initrd: Path, size: int = DISK_SIZE) -> None:
    """A syslinux-bootable FAT volume (no partition table) holding kernel and initramfs."""
    with open(raw, "wb") as f:
        f.truncate(size)
    _run(["mkfs.fat", "-F", "16", "-n", "HVGUEST", str(raw)])
    _run(["syslinux", "--install", str(raw)])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "syslinux.cfg"
        cfg.write_text(SYSLINUX_CFG)
        env_files = [(kernel, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")]
        for src, dst in env_files:
            _run(["mcopy", "-o", "-i", str(raw), str(src), f"::{dst}"])


def build(cache_dir: Path | None = None, out_dir: Path | None = None) -> GuestImage:
    """Build (or reuse) the guest template; copy it to ``out_dir`` if given."""
    cache = cache_dir or default_cache_dir()
    debs = cache / "debs"
    kpkg = newest_kernel_package()
    kdeb = download(kpkg, debs)
    bdeb = download(BUSYBOX, debs)
    key = hashlib.sha256("\x00".join(
        [BUILDER_VERSION, kdeb.name, bdeb.name, INIT_SCRIPT, SYSLINUX_CFG, *ROOT_MODULES,
         *(f"{path}\x00{text}\x00{mode}" for path, (text, mode) in sorted(GUEST_FILES.items()))]).encode()
    ).hexdigest()[:16]
    result_dir = cache / "images" / key
    image = GuestImage(raw=result_dir / "guest.raw", qcow2=result_dir / "guest.qcow2",
                       vhd=result_dir / "guest.vhd", kernel_package=kpkg)
    if not (result_dir / "complete").exists():
        log.info("guest.build", kernel=kpkg, cache=str(result_dir))
        _build_into(result_dir, kdeb, bdeb, image)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in (image.raw, image.qcow2, image.vhd):
            shutil.copyfile(p, out_dir / p.name)
        return GuestImage(raw=out_dir / "guest.raw", qcow2=out_dir / "guest.qcow2",
                          vhd=out_dir / "guest.vhd", kernel_package=kpkg)
    return image


def _build_into(result_dir: Path, kdeb: Path, bdeb: Path, image: GuestImage) -> None:
    result_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=result_dir.parent) as tmp_s:
        tmp = Path(tmp_s)
        _run(["dpkg-deb", "-x", str(kdeb), str(tmp / "k")])
        _run(["dpkg-deb", "-x", str(bdeb), str(tmp / "b")])
        kernels = sorted((tmp / "k" / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise GuestBuildError(f"{kdeb.name} holds no /boot/vmlinuz-*")
        modroots = sorted((tmp / "k" / "lib" / "modules").glob("*"))
        if not modroots:
            modroots = sorted((tmp / "k" / "usr" / "lib" / "modules").glob("*"))
        modules = resolve_modules(ROOT_MODULES, _module_index(modroots[0])) if modroots else []
        busybox = tmp / "b" / "bin" / "busybox"
        if not busybox.exists():
            raise GuestBuildError(f"{bdeb.name} holds no /bin/busybox")
        initrd = tmp / "initrd.gz"
        initrd.write_bytes(build_initramfs(busybox.read_bytes(), modules))
        work = tmp / "out"
        work.mkdir()
        raw = work / "guest.raw"
        make_boot_disk(raw, kernels[-1], initrd)
        qemu_img.convert(str(raw), "raw", str(work / "guest.qcow2"), "qcow2")
        qemu_img.convert(str(raw), "raw", str(work / "guest.vhd"), "vhd", options=["subformat=dynamic"])
        (work / "complete").write_text(kernels[-1].name + "\n")
        if result_dir.exists():
            shutil.rmtree(result_dir)
        os.replace(work, result_dir)
