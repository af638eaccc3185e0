"""SSH key parsing, fingerprints, generated keys and encrypted passwords (checked against the real
``ssh-keygen`` and ``openssl``), user data bounds, and the metadata a router serves a VM."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hvcloud.server.errors import PARAM_ERROR, CloudError
from hvcloud.server.orchestration import ssh_keys
from hvcloud.server.orchestration import user_data as U
from hvcloud.server.orchestration import vm_metadata as M

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


def _tool(*cmd: str) -> bytes:
    """Run ssh-keygen or openssl with fixed arguments; its stdout."""
    return subprocess.run(list(cmd), check=True, capture_output=True).stdout  # noqa: S603 - fixed tools


def _keygen(tmp_path: Path, kind: str, bits: int | None = None, comment: str = "me@host") -> str:
    path = tmp_path / f"id_{kind}_{bits}"
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits is not None:
        cmd += ["-b", str(bits)]
    _tool(*cmd)
    return (tmp_path / f"{path.name}.pub").read_text().strip()


def _md5_of(tmp_path: Path, line: str) -> str:
    path = tmp_path / "fp.pub"
    path.write_text(line + "\n")
    out = _tool("ssh-keygen", "-l", "-E", "md5", "-f", str(path)).decode()
    return out.split()[1].removeprefix("MD5:")


@needs_ssh_keygen
@pytest.mark.parametrize(("kind", "bits"), [("rsa", 2048), ("rsa", 1024), ("ed25519", None), ("ecdsa", 256),
                                            ("ecdsa", 384), ("ecdsa", 521)])
def test_real_keys_normalise_and_fingerprint_as_ssh_keygen(tmp_path: Path, kind: str, bits: int | None) -> None:
    line = _keygen(tmp_path, kind, bits, comment="alice laptop with spaces")
    key_type, blob = line.split()[:2]
    normal = ssh_keys.normalise(line)
    assert normal == f"{key_type} {blob}"
    assert ssh_keys.normalise(f"  {line}\n") == normal
    # key material without a space is the base64 of a key line (CloudStack accepts that too)
    assert ssh_keys.normalise(base64.b64encode(line.encode()).decode()) == normal
    assert ssh_keys.fingerprint(normal) == _md5_of(tmp_path, line)


@needs_ssh_keygen
def test_hostile_public_keys_are_refused(tmp_path: Path) -> None:
    rsa_line = _keygen(tmp_path, "rsa", 2048)
    ed_line = _keygen(tmp_path, "ed25519")
    key_type, blob = rsa_line.split()[:2]
    raw = base64.b64decode(blob)
    bad = [
        "", " ", "ssh-rsa", "ssh-rsa ", "hello world", "ssh-rsa not-base64!!",
        f"ssh-ed25519 {blob}",  # the line names one type, the blob holds another
        f"ssh-rsa {ed_line.split()[1]}",
        f"ssh-rsa {base64.b64encode(raw[:-10]).decode()}",  # truncated
        f"ssh-rsa {base64.b64encode(raw + b'trailing').decode()}",  # trailing bytes
        f"ssh-dss {blob}", f"command=\"rm -rf /\" {rsa_line}",  # options in front: not a key line
        f"{key_type} {blob[:40]}\u00e9{blob[40:]}",
        "ssh-rsa " + "A" * (ssh_keys.MAX_KEY_MATERIAL + 1),
        base64.b64encode(b"\xff\xfe binary").decode(),
        "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
    ]
    for material in bad:
        with pytest.raises(CloudError) as info:
            ssh_keys.normalise(material)
        assert info.value.code == PARAM_ERROR and "Public key is invalid" in info.value.text, material[:60]


def test_small_rsa_keys_are_refused() -> None:
    key = rsa.RSAPublicNumbers(65537, (1 << 767) | 0xF1).public_key()  # a 768-bit modulus
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(CloudError) as info:
        ssh_keys.normalise(line)
    assert "1024" in info.value.text


def test_generated_key_pair_matches_and_password_decrypts_with_it(tmp_path: Path) -> None:
    public, private = ssh_keys.generate()
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    mine = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert ssh_keys.normalise(public) == mine
    encrypted = ssh_keys.encrypt_password(public, "Secr3tPw")
    assert encrypted is not None
    assert key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()) == b"Secr3tPw"
    # and with the tool a user would run on the getVMPassword answer
    if shutil.which("openssl") is not None:
        (tmp_path / "k.pem").write_text(private)
        (tmp_path / "pw.bin").write_bytes(base64.b64decode(encrypted))
        out = _tool("openssl", "pkeyutl", "-decrypt", "-inkey", str(tmp_path / "k.pem"),
                    "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", str(tmp_path / "pw.bin"))
        assert out == b"Secr3tPw"


@needs_ssh_keygen
def test_password_encryption_takes_the_first_rsa_key(tmp_path: Path) -> None:
    ed = ssh_keys.normalise(_keygen(tmp_path, "ed25519"))
    assert ssh_keys.encrypt_password(ed, "pw") is None
    assert ssh_keys.encrypt_password("garbage\nssh-rsa AAAA", "pw") is None
    public, private = ssh_keys.generate()
    encrypted = ssh_keys.encrypt_password(f"{ed}\n{public}", "pw123")
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and encrypted is not None
    assert key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()) == b"pw123"


def test_generated_passwords_mix_classes_and_differ() -> None:
    seen = {ssh_keys.generate_password(6) for _ in range(50)}
    assert len(seen) > 45
    for password in seen:
        assert len(password) == 6 and any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password) and not set(password) & set("0O1lI")
    assert len(ssh_keys.generate_password(3)) == 6 and len(ssh_keys.generate_password(20)) == 20


# ---------------------------------------------------------------------- user data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_user_data_is_normalised() -> None:
    assert U.validate(_b64(b"#cloud-config\n"), method="GET") == _b64(b"#cloud-config\n")
    assert U.validate("aGVsbG8", method="GET") == "aGVsbG8="  # padding added, as CloudStack re-encodes
    assert U.validate("aGVs\nbG8=", method="POST") == "aGVsbG8="
    assert U.validate("aGVsbG8%3D", method="GET") == "aGVsbG8="  # URL-encoded once more


@pytest.mark.parametrize(("raw", "method", "max_length", "text"), [
    ("not base64!", "GET", 32768, "not base64"),
    ("aGVsbG8=" + "\u00e9", "GET", 32768, "not base64"),
    ("====", "GET", 32768, "not base64"),
    ("", "GET", 32768, "too short"),
    ("%ZZ%", "GET", 32768, "not base64"),
    ("%ff", "GET", 32768, "Url decoding"),
    ("A" * 4096, "GET", 32768, "too long for an http GET"),
    ("A" * 4092, "GET", 1000, "configurable max length : 1000"),
    ("A" * 40000, "POST", 32768, "configurable max length : 32768"),
    ("A" * (U.MAX_POST_LENGTH + 4), "POST", U.MAX_MAX_LENGTH, "too long for an http POST"),
])
def test_bad_user_data_is_refused(raw: str, method: str, max_length: int, text: str) -> None:
    with pytest.raises(CloudError) as info:
        U.validate(raw, method=method, max_length=max_length)
    assert info.value.code == PARAM_ERROR and text in info.value.text


def test_post_takes_more_user_data_than_get() -> None:
    data = _b64(b"x" * 20000)
    with pytest.raises(CloudError):
        U.validate(data, method="GET")
    assert U.validate(data, method="POST") == data
    big = _b64(b"y" * 700_000)
    assert U.validate(big, method="POST", max_length=U.MAX_MAX_LENGTH) == big
    with pytest.raises(CloudError):
        U.validate(big, method="POST")  # the default vm.userdata.max.length


def test_user_data_params_and_details() -> None:
    assert U.parse_params(None) == [] and U.parse_params(" a , b.c,d-e_f ") == ["a", "b.c", "d-e_f"]
    for bad in ("a,a", "a b", "x,public-keys", "../etc", ",".join(f"p{i}" for i in range(65)), "\u00e9"):
        with pytest.raises(CloudError):
            U.parse_params(bad)
    stored = U.check_details(["role"], {"role": "web", "extra": "ok"})
    assert U.load_details(stored) == {"extra": "ok", "role": "web"}
    assert U.check_details([], {}) is None and U.load_details(None) == {}
    with pytest.raises(CloudError) as info:
        U.check_details(["role", "size"], {"role": "web"})
    assert "size" in info.value.text
    for details in ({"instance-id": "forged"}, {"a b": "x"}, {"k": "v" * 5000},
                    {f"k{i}": "v" for i in range(65)}):
        with pytest.raises(CloudError):
            U.check_details([], details)


# ---------------------------------------------------------------------- metadata


def test_vm_data_in_cloudstacks_order_for_a_shared_network() -> None:
    data = M.vm_data(M.VmDataInput(
        vm_id="6a1e", hostname="web-1", service_offering="Small \u00e9", zone_name="z\u4e2d", guest_ip="10.1.1.5",
        public_keys="ssh-rsa AAAA\nssh-ed25519 BBBB", user_data="aGk=", user_data_details={"role": "web"},
        cloud_identifier="abc", hypervisor_host_name="kvm-3"))
    assert data == [
        ("userdata", "user-data", "aGk="),
        ("metadata", "service-offering", "Small \\u00e9"),
        ("metadata", "availability-zone", "z\\u4e2d"),
        ("metadata", "local-ipv4", "10.1.1.5"),
        ("metadata", "local-hostname", "web-1"),
        ("metadata", "role", "web"),
        ("metadata", "public-ipv4", "10.1.1.5"),
        ("metadata", "public-hostname", "web-1"),
        ("metadata", "instance-id", "6a1e"),
        ("metadata", "vm-id", "6a1e"),
        ("metadata", "public-keys", "ssh-rsa AAAA\nssh-ed25519 BBBB"),
        ("metadata", "cloud-identifier", "CloudStack-{abc}"),
        ("metadata", "hypervisor-host-name", "kvm-3"),
    ]


def test_vm_data_of_an_isolated_network_shows_the_public_address() -> None:
    base = {"vm_id": "u", "hostname": "h", "service_offering": "s", "zone_name": "z", "guest_ip": "10.0.0.2",
            "shared_network": False}
    files = dict(((f, n), c) for f, n, c in M.vm_data(M.VmDataInput(**base, public_ip="198.51.100.7",  # type: ignore[arg-type]
                                                                     router_public_ip="198.51.100.1")))
    assert files[("metadata", "public-ipv4")] == "198.51.100.7" == files[("metadata", "public-hostname")]
    files = dict(((f, n), c) for f, n, c in M.vm_data(M.VmDataInput(**base, router_public_ip="198.51.100.1")))  # type: ignore[arg-type]
    assert files[("metadata", "public-ipv4")] == "198.51.100.1"
    names = [n for _, n, _ in M.vm_data(M.VmDataInput(**base))]  # type: ignore[arg-type]
    assert "public-ipv4" not in names and names[-1] == "hypervisor-host-name"
    files = dict(((f, n), c) for f, n, c in M.vm_data(M.VmDataInput(**base)))  # type: ignore[arg-type]
    assert files[("metadata", "cloud-identifier")] == "" and files[("userdata", "user-data")] is None


def test_unicode_escape_matches_java() -> None:
    assert M.unicode_escape("plain-ASCII ~") == "plain-ASCII ~"
    assert M.unicode_escape("\u00e9\U0001f4a9") == "\\u00e9\\ud83d\\udca9"


def test_the_password_goes_to_the_routers_once_per_new_password(tmp_path: Path) -> None:
    from hvcloud.server.db.crypto import SecretBox
    from hvcloud.server.db.models import VMInstance
    from hvcloud.server.orchestration import vm_credentials as creds

    box = SecretBox.from_data_dir(tmp_path)
    vm = VMInstance(id="v", name="web", password_enc=None, password_pending=False)
    assert M.password_for_router(vm, box) is None
    first = creds.new_password(vm, box, 8)
    assert M.password_for_router(vm, box) == first and len(first) == 8
    assert M.password_for_router(vm, box) == first  # until the routers confirm it
    M.password_saved(vm)
    assert M.password_for_router(vm, box) is None and vm.password_enc is not None
    second = creds.new_password(vm, box, 8)
    assert M.password_for_router(vm, box) == second != first


def test_input_for_a_vm_row() -> None:
    from hvcloud.server.db.models import VMInstance

    vm = VMInstance(id="0b7e3c3e-0000-4000-8000-000000000001", name="db-1", instance_name="i-2-7-VM",
                    ssh_public_keys="ssh-ed25519 AAAA", user_data="aGk=", user_data_details='{"role": "db"}')
    files = {(f, n): c for f, n, c in M.vm_data(M.input_for(vm, guest_ip="10.0.0.9", zone_name="z1",
                                                            service_offering="Small", hypervisor_host_name="h1"))}
    assert files[("metadata", "instance-id")] == vm.id == files[("metadata", "vm-id")]
    assert files[("metadata", "local-hostname")] == "db-1" and files[("metadata", "role")] == "db"
    assert files[("metadata", "public-keys")] == "ssh-ed25519 AAAA" and files[("userdata", "user-data")] == "aGk="
    bare = VMInstance(id="x", name="n", ssh_public_keys="", user_data=None, user_data_details=None)
    files = {(f, n): c for f, n, c in M.vm_data(M.input_for(bare, guest_ip="10.0.0.2", zone_name="z",
                                                            service_offering="s"))}
    assert files[("metadata", "public-keys")] is None and files[("metadata", "hypervisor-host-name")] is None
