"""The ``hvcloud disk`` commands end to end (in-process), and floppy images checked by
dosfstools and mtools."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hvcloud.cli.disk import parse_size
from hvcloud.cli.main import app
from hvcloud.storage.vhd import Chain
from hvcloud.storage.vhd.floppy import FLOPPY_SIZE, FloppyError, create_floppy, short_name
from tests.unit.storage.vhd.conftest import digest

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["disk", *args])
    return r.exit_code, r.output


def test_create_info_check_merge(tmp_path: Path) -> None:
    base, child = str(tmp_path / "base.vhd"), str(tmp_path / "child.vhd")
    assert run("create", "--type", "dynamic", "--size", "10G", base)[0] == 0
    assert run("create", "--type", "differencing", "--parent", base, child)[0] == 0
    code, text = run("info", "--json", child)
    assert code == 0
    data = json.loads(text)
    assert data["type"] == "differencing" and data["virtual_size"] == 10 * 1024**3
    assert data["parent"]["name"] == "base.vhd"
    code, text = run("check", "--json", child)
    assert code == 0 and json.loads(text)["ok"] is True
    with Chain(child, writable=True) as c:
        c.write(0, b"hi" * 256)
    assert run("merge", "-q", child)[0] == 0
    with Chain(base) as c:
        assert c.read(0, 2) == b"hi"


def test_resize_compact_convert_set_parent(tmp_path: Path) -> None:
    p = str(tmp_path / "d.vhd")
    assert run("create", "-t", "fixed", "-s", "1M", p)[0] == 0
    assert run("resize", p, "2M")[0] == 0
    code, text = run("info", "--json", p)
    assert json.loads(text)["virtual_size"] == 2 * 1024 * 1024
    dyn = str(tmp_path / "dyn.vhd")
    assert run("convert", "-q", p, dyn)[0] == 0
    assert run("compact", "-q", dyn)[0] == 0
    assert run("convert", "-q", dyn, str(tmp_path / "d.qcow2"))[0] == 0
    code, text = run("info", "--json", str(tmp_path / "d.qcow2"))
    assert code == 0 and json.loads(text)["format"] == "qcow2"
    child = str(tmp_path / "c.vhd")
    assert run("create", "-t", "differencing", "-p", dyn, child)[0] == 0
    code, text = run("set-parent", child, p)
    assert code == 1 and "force" in text


@pytest.mark.parametrize(
    "args",
    [
        ("create", "-t", "dynamic", "X.vhd"),
        ("create", "-t", "weird", "-s", "1M", "X.vhd"),
        ("create", "-t", "dynamic", "-s", "3000G", "X.vhd"),
        ("create", "-t", "differencing", "X.vhd"),
        ("info", "missing.vhd"),
        ("merge", "missing.vhd"),
    ],
)
def test_bad_invocations_fail_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = run(*args)
    assert code != 0
    assert "Traceback" not in text
    assert not (tmp_path / "X.vhd").exists()


def test_corrupt_disk_gives_nonzero_exit_and_is_untouched(tmp_path: Path) -> None:
    p = tmp_path / "d.vhd"
    assert run("create", "-t", "dynamic", "-s", "4M", str(p))[0] == 0
    with open(p, "r+b") as f:
        f.seek(512 + 36)
        f.write(b"\0\0\0\0")
    before = digest(p)
    for cmd in (["check"], ["check", "--json"], ["info"], ["compact"], ["resize"], ["merge"]):
        extra = ["8M"] if cmd == ["resize"] else []
        code, text = run(*cmd, str(p), *extra)
        assert code == 1, cmd
        assert "checksum mismatch" in text, (cmd, text)
    assert digest(p) == before


def test_a_file_that_claims_to_be_a_vhd_and_is_not_one_is_an_error(tmp_path: Path) -> None:
    """Never reported as ``raw``: a .vhd with a garbage footer, a short .vhd, and a file of any name
    whose dynamic header survives but whose footer is gone; each error names the footer cookie."""
    garbage = tmp_path / "garbage.vhd"
    garbage.write_bytes(b"\x5a" * 4096)
    short = tmp_path / "short.vhd"
    short.write_bytes(b"conec")
    headless = tmp_path / "disk.img"
    assert run("create", "-t", "dynamic", "-s", "4M", str(tmp_path / "d.vhd"))[0] == 0
    data = bytearray((tmp_path / "d.vhd").read_bytes())
    data[:8] = data[-512:-504] = b"\0" * 8  # both footer copies wiped, the header at 512 intact
    headless.write_bytes(bytes(data))
    for path, expected in ((garbage, "footer cookie"), (short, "too short for a footer"),
                           (headless, "footer cookie")):
        for cmd in (["info"], ["info", "--json"], ["check"]):
            code, text = run(*cmd, str(path))
            flat = " ".join(text.split())  # the console wraps long lines
            assert code == 1, (path, cmd, text)
            assert "not a VHD" in flat and expected in flat and "Traceback" not in flat, (path, cmd, text)
            assert "format: raw" not in flat and '"raw"' not in flat, (path, cmd, text)
    raw = tmp_path / "plain.img"  # no claim: still plain raw
    raw.write_bytes(b"\x5a" * 4096)
    code, text = run("info", "--json", str(raw))
    assert code == 0 and json.loads(text)["format"] == "raw"


def test_parse_size() -> None:
    assert parse_size("10G") == 10 * 1024**3
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("4096") == 4096
    assert parse_size("1.5K") == 1536
    with pytest.raises(Exception, match="not a size"):
        parse_size("ten gigs")


def test_floppy_with_files(tmp_path: Path) -> None:
    a = tmp_path / "readme.txt"
    a.write_text("hello from hvcloud\n" * 500)
    b = tmp_path / "DATA.BIN"
    b.write_bytes(bytes(range(256)) * 40)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    vfd = tmp_path / "f.vfd"
    code, _ = run("floppy", "--label", "config", str(vfd), str(a), str(b), str(empty))
    assert code == 0
    assert vfd.stat().st_size == FLOPPY_SIZE
    if not (shutil.which("fsck.fat") and shutil.which("mdir")):
        pytest.skip("dosfstools/mtools are not installed")
    subprocess.run(["fsck.fat", "-n", str(vfd)], check=True, capture_output=True)  # noqa: S603
    listing = subprocess.run(["mdir", "-i", str(vfd), "::"], check=True, capture_output=True, text=True)  # noqa: S603
    assert "README   TXT" in listing.stdout and "CONFIG" in listing.stdout
    typed = subprocess.run(["mtype", "-i", str(vfd), "::README.TXT"], check=True, capture_output=True)  # noqa: S603
    assert typed.stdout == a.read_bytes()
    copied = tmp_path / "out.bin"
    subprocess.run(["mcopy", "-i", str(vfd), "::DATA.BIN", str(copied)], check=True, capture_output=True)  # noqa: S603
    assert copied.read_bytes() == b.read_bytes()
    info = subprocess.run(["minfo", "-i", str(vfd), "::"], check=True, capture_output=True, text=True)  # noqa: S603
    assert "heads: 2" in info.stdout and "sectors per track: 18" in info.stdout


def test_blank_floppy(tmp_path: Path) -> None:
    vfd = tmp_path / "blank.vfd"
    assert run("floppy", "--blank", str(vfd))[0] == 0
    assert vfd.read_bytes() == bytes(FLOPPY_SIZE)


def test_floppy_refusals(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (FLOPPY_SIZE))
    with pytest.raises(FloppyError, match="does not fit"):
        create_floppy(str(tmp_path / "f.vfd"), files=[str(big)])
    for bad in ("toolongname.txt", "a.text", "sp ace.txt", "", ".hidden"):
        with pytest.raises(FloppyError):
            short_name(bad)
    assert short_name("a.b") == b"A       B  "
    dup1, dup2 = tmp_path / "x.txt", tmp_path / "sub"
    dup1.write_text("1")
    dup2.mkdir()
    (dup2 / "X.TXT").write_text("2")
    with pytest.raises(FloppyError, match="both"):
        create_floppy(str(tmp_path / "f.vfd"), files=[str(dup1), str(dup2 / "X.TXT")])
    assert not (tmp_path / "f.vfd").exists()
