"""SSH public keys and guest passwords, as CloudStack handles them (no I/O, no database).

* A public key is kept *normalised*: ``<type> <base64 blob>``, without options or comment
  (CloudStack's ``SSHKeysHelper.getPublicKeyFromKeyMaterial``); key material without a space is
  taken as the base64 of such a line. The blob is parsed with ``cryptography`` and must hold a key of
  the type the line names.
* The fingerprint is CloudStack's: the MD5 of the key blob, in lower-case hex pairs joined by ``:``.
* ``createSSHKeyPair`` makes an RSA key (CloudStack's ``ssh.key.length``, 2048 bits); the private
  key is handed back once, PEM, and never stored.
* ``getVMPassword`` answers the VM's password encrypted with its (first) RSA public key,
  PKCS#1 v1.5, base64, which ``cs getVMPassword | openssl rsautl -decrypt -inkey key`` reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import string

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from hvcloud.server import errors

#: key types ``registerSSHKeyPair`` accepts
KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
#: an OpenSSH line of a 16384-bit RSA key is under 3 KB; anything far longer is refused unread
MAX_KEY_MATERIAL = 16 * 1024
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 16384
GENERATED_RSA_BITS = 2048
#: CloudStack's ``vm.password.length`` default; the alphabet leaves out look-alikes (0/O, 1/l/I)
DEFAULT_PASSWORD_LENGTH = 6
_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")

INVALID = "Public key is invalid"


def normalise(material: str) -> str:
    """``<type> <blob>`` of an OpenSSH public key line, or CloudStack's 431 "Public key is invalid"."""
    if not material or len(material) > MAX_KEY_MATERIAL:
        raise errors.param_error(INVALID)
    text = material.strip()
    if " " not in text:
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise errors.param_error(INVALID) from None
    parts = text.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise errors.param_error(INVALID)
    key_type, blob = parts[0], parts[1]
    line = f"{key_type} {blob}"
    try:
        key = serialization.load_ssh_public_key(line.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise errors.param_error(INVALID) from None
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise errors.param_error(f"{INVALID}: RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    elif not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise errors.param_error(INVALID)
    return line


def fingerprint(public_key: str) -> str:
    """CloudStack's fingerprint of a normalised key: MD5 of the blob, ``aa:bb:...``."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate(bits: int = GENERATED_RSA_BITS) -> tuple[str, str]:
    """A new RSA key pair: (normalised public key, private key in PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    return public, private


def generate_password(length: int = DEFAULT_PASSWORD_LENGTH) -> str:
    """A random guest password with at least one lower-case letter, one upper-case letter and one digit."""
    length = max(length, 6)
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if any(c.islower() for c in password) and any(c.isupper() for c in password) \
                and any(c.isdigit() for c in password):
            return password


def encrypt_password(public_keys: str, password: str) -> str | None:
    """The password encrypted with the first RSA key of ``public_keys`` (one per line), PKCS#1 v1.5,
    base64; None when there is no RSA key to encrypt with."""
    for line in public_keys.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != "ssh-rsa":
            continue
        try:
            key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode("ascii")
    return None
