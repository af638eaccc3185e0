"""VNC authentication (RFB security type 2): DES of the server's 16-byte challenge under the
password, with each key byte's bits reversed, as every VNC server and client does it. Shared by the
console proxy (client side) and the simulator's VNC server (server side)."""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

CHALLENGE_BYTES = 16


def _reverse_bits(b: int) -> int:
    return int(f"{b:08b}"[::-1], 2)


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The 16-byte response to ``challenge``: only the first 8 bytes of the password count."""
    if len(challenge) != CHALLENGE_BYTES:
        raise ValueError("a VNC challenge is 16 bytes")
    key = bytes(_reverse_bits(b) for b in password.encode("latin-1", "replace")[:8].ljust(8, b"\0"))
    # single DES is TripleDES with K1 = K2 = K3
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # ECB is what RFB specifies
    return enc.update(challenge) + enc.finalize()
