"""What a router accepts: every check both router hosts (namespace and simulated) share.

Everything here ends up in a dnsmasq file or on a path, so a value is refused unless it is exactly
what it claims to be: a hostname is one RFC 1123 label (a newline or a comma would inject dnsmasq
configuration), a MAC is six colon-separated octets, an address lies inside the router's subnet, a
vm data folder or file name is a plain name (no ``/``, no ``..``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

from hvcloud.network.bridges import NetworkError, segment_bridge_name
from hvcloud.router.api import DhcpEntry, InvalidRouterRequest, RouterSpec, Segment, VmData

#: CloudStack's ceiling for user data (``vm.userdata.max.length`` may be raised up to 1 MiB)
MAX_USER_DATA = 1 << 20
#: any other vm data file (an SSH public key list, an instance id …)
MAX_VM_DATA_FILE = 64 << 10
#: vm data files per VM
MAX_VM_DATA_FILES = 64
MAX_PASSWORD = 1024
#: the folders whose files the metadata service serves; other folders are kept but never served
SERVED_FOLDERS = ("userdata", "metadata")
USER_DATA_FOLDER = "userdata"

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_ROUTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def router_name(name: str) -> str:
    if not isinstance(name, str) or not _ROUTER_NAME_RE.fullmatch(name):
        raise InvalidRouterRequest(f"invalid router name {name!r}: letters, digits, '.', '_', '-', at most 63")
    return name


def mac(value: str) -> str:
    """The MAC in dnsmasq's canonical form (lower case)."""
    norm = value.lower() if isinstance(value, str) else ""
    if not _MAC_RE.fullmatch(norm):
        raise InvalidRouterRequest(f"invalid MAC address {value!r}")
    if norm == "00:00:00:00:00:00" or int(norm[:2], 16) & 1:
        raise InvalidRouterRequest(f"MAC address {value!r} is not a unicast address")
    return norm


def hostname(value: str) -> str:
    """One RFC 1123 label: letters, digits and inner hyphens, 1 to 63 characters."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value) or value.isdigit():
        raise InvalidRouterRequest(f"invalid hostname {value!r}: one RFC 1123 label (letters, digits, '-')")
    return value


def domain(value: str) -> str:
    if not isinstance(value, str) or len(value) > 253:
        raise InvalidRouterRequest(f"invalid network domain {value!r}")
    labels = value.rstrip(".").split(".")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise InvalidRouterRequest(f"invalid network domain {value!r}")
    return ".".join(labels)


def network(spec: RouterSpec) -> ipaddress.IPv4Network:
    """The router's subnet, from its address and prefix."""
    try:
        iface = ipaddress.IPv4Interface(f"{spec.address}/{spec.prefix}")
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as exc:
        raise InvalidRouterRequest(f"invalid router address {spec.address}/{spec.prefix}: {exc}") from exc
    if not 8 <= spec.prefix <= 30:
        raise InvalidRouterRequest(f"router prefix /{spec.prefix} is outside /8../30")
    net = iface.network
    if iface.ip in (net.network_address, net.broadcast_address):
        raise InvalidRouterRequest(f"router address {spec.address} is the network's or broadcast address")
    return net


def ipv4(value: str, what: str = "address") -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError) as exc:
        raise InvalidRouterRequest(f"invalid {what} {value!r}") from exc


def address_in(spec: RouterSpec, value: str) -> str:
    """``value`` as a canonical IPv4 address, refused unless it is a host address of the router's
    subnet other than the router's own."""
    ip = ipaddress.IPv4Address(ipv4(value))
    net = network(spec)
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        raise InvalidRouterRequest(f"address {value} is not a host address of the router's network {net}")
    if str(ip) == spec.address:
        raise InvalidRouterRequest(f"address {value} is the router's own address")
    return str(ip)


def segment(value: Segment) -> Segment:
    """A trunk name the kernel accepts and at most one of a VLAN id (1..4094) or a VNI."""
    if value.trunk is not None and not _IFNAME_RE.fullmatch(value.trunk):
        # (bridges' own check uses ``$``, which lets a trailing newline through)
        raise InvalidRouterRequest(f"invalid segment: trunk name {value.trunk!r}")
    try:
        segment_bridge_name(value.trunk, value.vlan, value.vxlan)
    except NetworkError as exc:
        raise InvalidRouterRequest(f"invalid segment: {exc}") from exc
    return value


def spec(value: RouterSpec) -> RouterSpec:
    """The spec with its MAC, domain and DNS servers in canonical form; raises on any bad field."""
    router_name(value.name)
    segment(value.segment)
    network(value)
    if len(value.dns) > 3:
        raise InvalidRouterRequest("at most 3 upstream DNS servers")
    return RouterSpec(
        name=value.name, segment=value.segment, mac=mac(value.mac), address=ipv4(value.address),
        prefix=value.prefix, domain=domain(value.domain),
        dns=tuple(ipv4(d, "DNS server") for d in value.dns), network_id=value.network_id,
    )


def entry(spec_: RouterSpec, value: DhcpEntry) -> DhcpEntry:
    return DhcpEntry(mac=mac(value.mac), ip=address_in(spec_, value.ip), hostname=hostname(value.hostname),
                     default=bool(value.default))


def key(value: object, what: str) -> str:
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value) or value in (".", ".."):
        raise InvalidRouterRequest(f"invalid vm data {what} name {value!r}: [A-Za-z0-9._-], at most 64")
    return value


def _user_data(text: str) -> bytes:
    """CloudStack sends user data base64-encoded (padding optional, URL-safe or not)."""
    if len(text) > (MAX_USER_DATA * 4) // 3 + 8:
        raise InvalidRouterRequest(f"user data is larger than {MAX_USER_DATA} bytes")
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRouterRequest(f"user data is not valid base64: {exc}") from exc
    if len(raw) > MAX_USER_DATA:
        raise InvalidRouterRequest(f"user data is larger than {MAX_USER_DATA} bytes")
    return raw


@dataclass(frozen=True)
class VmFiles:
    """One VM's vm data, validated: folder → file → bytes, in the order given."""

    files: dict[str, dict[str, bytes]]

    def get(self, folder: str, name: str) -> bytes | None:
        return self.files.get(folder, {}).get(name)


def vm_data(data: VmData) -> VmFiles:
    """The triples as files. A ``None`` or empty content (CloudStack also sends ``"none"`` for no
    user data) leaves the file out, as the router deletes it."""
    if isinstance(data, str | bytes):
        raise InvalidRouterRequest("vm data must be a list of [folder, file, contents] triples")
    files: dict[str, dict[str, bytes]] = {}
    count = 0
    for item in data:
        if not isinstance(item, list | tuple) or len(item) != 3:
            raise InvalidRouterRequest(f"vm data item {item!r} is not a [folder, file, contents] triple")
        folder, name, content = item
        key(folder, "folder")
        key(name, "file")
        if content is not None and not isinstance(content, str):
            raise InvalidRouterRequest(f"vm data {folder}/{name} content is not text")
        count += 1
        if count > MAX_VM_DATA_FILES:
            raise InvalidRouterRequest(f"more than {MAX_VM_DATA_FILES} vm data files")
        if content is None or content == "" or (folder == USER_DATA_FOLDER and content == "none"):
            files.setdefault(folder, {}).pop(name, None)
            continue
        if folder == USER_DATA_FOLDER:
            raw = _user_data(content)
        else:
            try:
                raw = content.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidRouterRequest(f"vm data {folder}/{name} is not valid text") from exc
            if len(raw) > MAX_VM_DATA_FILE:
                raise InvalidRouterRequest(f"vm data {folder}/{name} is larger than {MAX_VM_DATA_FILE} bytes")
        files.setdefault(folder, {})[name] = raw
    return VmFiles({f: d for f, d in files.items() if d})


def password(value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_PASSWORD:
        raise InvalidRouterRequest(f"a password is 1 to {MAX_PASSWORD} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidRouterRequest("a password holds no control characters")
    return value
