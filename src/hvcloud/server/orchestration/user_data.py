"""User data checks, as CloudStack's ``UserDataManagerImpl.validateUserData`` applies them.

User data travels base64-encoded. Its *encoded* length must stay under the HTTP method's bound
(4096 characters for GET, 1 MiB for POST) and at most ``vm.userdata.max.length`` (32768 by default,
at most 1048576); the decoded bytes must not exceed the method's bound and must not be empty. What
is stored is the decoded bytes encoded again, padded (the router's Python needs the padding).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import unquote

from hvcloud.server import errors

MAX_GET_LENGTH = 2 * 2048
MAX_POST_LENGTH = 512 * 2048
DEFAULT_MAX_LENGTH = 32768
#: ``vm.userdata.max.length`` may not be set above this (CloudStack refuses larger values)
MAX_MAX_LENGTH = 1048576
#: ``registerUserData params``: names of the variables ``userdatadetails`` fill in
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
MAX_PARAMS = 64
MAX_DETAILS = 64
_WHITESPACE = re.compile(r"\s+")
#: the files a router's metadata service serves itself: user data parameters may not take these names
METADATA_FILE_NAMES = ("service-offering", "availability-zone", "local-ipv4", "local-hostname", "public-ipv4",
                       "public-hostname", "instance-id", "vm-id", "public-keys", "cloud-identifier",
                       "hypervisor-host-name", "user-data")


def validate(raw: str, *, method: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """The user data to store (base64, padded) or a 431 saying what is wrong with ``raw``."""
    if "%" in raw:
        try:
            raw = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise errors.param_error("Url decoding of userdata failed.") from None
    post = method.upper() == "POST"
    bound = MAX_POST_LENGTH if post else MAX_GET_LENGTH
    shown = "POST" if post else "GET"
    if len(raw) >= bound:
        raise errors.param_error(f"User data is too long for an http {shown} request")
    limit = min(max_length, MAX_MAX_LENGTH)
    if len(raw) > limit:
        raise errors.param_error(f"User data has exceeded configurable max length : {limit}")
    compact = _WHITESPACE.sub("", raw)
    compact += "=" * (-len(compact) % 4)
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise errors.param_error("User data is not base64 encoded") from None
    if len(decoded) > bound:
        raise errors.param_error(f"User data is too long for http {shown} request")
    if not decoded:
        raise errors.param_error("User data is too short")
    return base64.b64encode(decoded).decode("ascii")


def parse_params(raw: str | None) -> list[str]:
    """``registerUserData params``: a comma-separated list of variable names (no duplicates)."""
    if raw is None or not raw.strip():
        return []
    names = [p.strip() for p in raw.split(",") if p.strip()]
    if len(names) > MAX_PARAMS:
        raise errors.param_error(f"At most {MAX_PARAMS} user data parameters")
    for name in names:
        if not _PARAM_NAME.match(name):
            raise errors.param_error(f"Invalid user data parameter name: {name[:64]}")
    reserved = [n for n in names if n in METADATA_FILE_NAMES]
    if reserved:
        raise errors.param_error(f"Params passed here have a few virtual router metadata file names {reserved}")
    if len(set(names)) != len(names):
        raise errors.param_error("User data parameters must be unique")
    return names


def check_details(params: list[str], details: dict[str, str]) -> str | None:
    """The ``userdatadetails`` of a deploy as stored (JSON), checked against the registered user
    data's ``params``: every parameter needs a value (CloudStack: "Userdata details ... not provided")."""
    if len(details) > MAX_DETAILS:
        raise errors.param_error(f"At most {MAX_DETAILS} userdatadetails")
    for key, value in details.items():
        if not _PARAM_NAME.match(key) or key in METADATA_FILE_NAMES or len(value) > 4096:
            raise errors.param_error(f"Invalid userdatadetails entry: {key[:64]}")
    missing = [p for p in params if p not in details]
    if missing:
        raise errors.param_error(f"Userdata details {', '.join(missing)} are not provided for the user data "
                                 f"parameters {', '.join(params)}")
    return json.dumps(details, sort_keys=True) if details else None


def load_details(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    value = json.loads(stored)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
