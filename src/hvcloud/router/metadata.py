"""Which vm data file a metadata URL names, as CloudStack's virtual router maps them.

CloudStack's router rewrites (its ``/var/www/html/latest/.htaccess``), by the client's address:
``/latest/meta-data/`` → the list of the VM's metadata files, one per line;
``/latest/meta-data/<file>`` → that metadata file; ``/latest/<file>`` → the file of that name in
any folder (``/latest/user-data``, and the legacy ``/latest/instance-id`` …). Only the
``userdata`` and ``metadata`` folders are served.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from hvcloud.router.validation import SERVED_FOLDERS, VmFiles

_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def manifest(files: VmFiles) -> bytes:
    return "".join(f"{name}\n" for name in files.files.get("metadata", {})).encode()


def resolve(path: str, files: VmFiles) -> bytes | None:
    """The body for a GET of ``path`` (query string and fragment ignored), or None (404)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/latest/"):
        return None
    rest = path[len("/latest/"):]
    if rest in ("meta-data", "meta-data/"):
        return manifest(files)
    if rest.startswith("meta-data/"):
        key = rest[len("meta-data/"):]
        return files.get("metadata", key) if _KEY_RE.fullmatch(key) and key not in (".", "..") else None
    key = rest.removesuffix("/")
    if not _KEY_RE.fullmatch(key) or key in (".", ".."):
        return None
    for folder in SERVED_FOLDERS:
        body = files.get(folder, key)
        if body is not None:
            return body
    return None


def files_to_json(files: VmFiles) -> dict[str, dict[str, str]]:
    return {folder: {name: base64.b64encode(body).decode("ascii") for name, body in names.items()}
            for folder, names in files.files.items()}


def files_from_json(data: Any) -> VmFiles:
    """What :func:`files_to_json` wrote; anything malformed (or a name that is not a plain key)
    is left out rather than served."""
    out: dict[str, dict[str, bytes]] = {}
    if not isinstance(data, dict):
        return VmFiles(out)
    for folder, names in data.items():
        if not isinstance(folder, str) or not _KEY_RE.fullmatch(folder) or not isinstance(names, dict):
            continue
        for name, body in names.items():
            if isinstance(name, str) and _KEY_RE.fullmatch(name) and isinstance(body, str):
                try:
                    out.setdefault(folder, {})[name] = base64.b64decode(body, validate=True)
                except (binascii.Error, ValueError):
                    continue
    return VmFiles(out)
