import hashlib
import io
from pathlib import Path

import pytest

from hvcloud.storage.errors import ChecksumMismatch, StoreError
from hvcloud.storage.transfer import Checksum, ProgressLog, parse_checksum, verify_file, write_chunks

DATA = b"hvcloud template bytes" * 1000


@pytest.mark.parametrize(("text", "algo"), [
    ("{MD5}" + hashlib.md5(DATA).hexdigest(), "md5"),
    ("{SHA-1}" + hashlib.sha1(DATA).hexdigest(), "sha1"),
    ("{SHA-256}" + hashlib.sha256(DATA).hexdigest().upper(), "sha256"),
    ("{sha-512}" + hashlib.sha512(DATA).hexdigest(), "sha512"),
    (hashlib.md5(DATA).hexdigest(), "md5"),
    ("  " + hashlib.md5(DATA).hexdigest() + "\n", "md5"),
])
def test_cloudstack_checksum_forms(text: str, algo: str) -> None:
    c = parse_checksum(text)
    assert c is not None and c.algorithm == algo
    assert c.hexdigest == hashlib.new(algo, DATA).hexdigest()


@pytest.mark.parametrize("text", [
    "{MD4}00", "{MD5}xyz", "{MD5}" + "0" * 31, "{SHA-256}" + "0" * 32, "12345", "{}abc",
    "md5:" + "0" * 32, "0" * 10_000, "{MD5}" + "0" * 32 + "\x00",
])
def test_malformed_checksums_are_refused(text: str) -> None:
    with pytest.raises(StoreError):
        parse_checksum(text)


def test_empty_checksum_means_none() -> None:
    assert parse_checksum(None) is None and parse_checksum("  ") is None


def test_write_chunks_verifies_and_limits() -> None:
    good = Checksum("md5", hashlib.md5(DATA).hexdigest())
    seen: list[tuple[int, int | None]] = []
    out = io.BytesIO()
    n = write_chunks([DATA[:100], DATA[100:]], out, max_bytes=len(DATA), checksum=good,
                     progress=ProgressLog("t", len(DATA), lambda d, t: seen.append((d, t))))
    assert n == len(DATA) and out.getvalue() == DATA and seen[-1] == (len(DATA), len(DATA))
    with pytest.raises(ChecksumMismatch):
        write_chunks([DATA, b"x"], io.BytesIO(), max_bytes=None, checksum=good)
    with pytest.raises(StoreError, match="larger than the size limit"):
        write_chunks([DATA, DATA], io.BytesIO(), max_bytes=len(DATA))


def test_verify_file(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(DATA)
    verify_file(p, parse_checksum("{SHA-256}" + hashlib.sha256(DATA).hexdigest()))
    with pytest.raises(ChecksumMismatch):
        verify_file(p, parse_checksum("0" * 32))
