"""Parsing of primary-storage and image-store URLs as CloudStack accepts them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

POOL_SCHEMES = {"nfs": "NetworkFilesystem", "file": "Filesystem", "sharedmountpoint": "SharedMountPoint",
                "smb": "SMB", "cifs": "SMB"}
STORE_SCHEMES = {"nfs": "nfs", "file": "file", "smb": "smb", "cifs": "cifs"}


class StorageUrlError(ValueError):
    pass


@dataclass
class ParsedStorageUrl:
    scheme: str
    host: str
    port: int | None
    path: str
    clean_url: str
    secrets: dict[str, str] = field(default_factory=dict)


def parse_storage_url(url: str, allowed: dict[str, str]) -> ParsedStorageUrl:
    """Split ``scheme://host[:port]/path[?k=v]``; query parameters (SMB credentials) are split off
    as secrets so the stored URL never carries them."""
    if len(url) > 2048:
        raise StorageUrlError("URL too long")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise StorageUrlError(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        raise StorageUrlError(f"unsupported scheme {scheme or '(none)'}; "
                              f"expected one of {', '.join(allowed)}")
    path = unquote(parts.path)
    if path.startswith("/") is False or ".." in path.split("/") or "\x00" in path:
        raise StorageUrlError("the path must be absolute and must not contain '..'")
    host = parts.hostname or ""
    if scheme in ("nfs", "smb", "cifs") and not host:
        raise StorageUrlError(f"{scheme} URLs need a server host name")
    if scheme in ("file", "sharedmountpoint"):
        host = host or "localhost"
    if scheme == "nfs" and host.endswith(":"):
        host = host[:-1]
    secrets = dict(parse_qsl(parts.query, keep_blank_values=True))
    netloc = host + (f":{port}" if port else "") if scheme not in ("file",) else ""
    clean = f"{scheme}://{netloc}{path}"
    return ParsedStorageUrl(scheme=scheme, host=host, port=port, path=path, clean_url=clean, secrets=secrets)
