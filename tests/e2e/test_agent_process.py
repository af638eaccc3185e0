"""The agent as a real process over HTTPS: restarts, several hosts, mTLS, compat mode."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hvcloud.agent_client import AgentClient, AgentRefused, AgentUnreachable, CertificateMismatch
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.startup import StartupRoutingCommand
from hvcloud.wire.to import VirtualMachineTO
from tests.support.agent_process import PASSWORD, USER, AgentProcess, run_cli
from tests.support.ports import free_port


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path / "agent", address="127.0.0.1").start()
    yield proc
    proc.kill()


def vm(name: str, mac: str) -> VirtualMachineTO:
    return VirtualMachineTO.model_validate({
        "name": name, "cpus": 1, "maxRam": 256 * 1024 * 1024, "type": "User",
        "nics": [{"deviceId": 0, "mac": mac, "broadcastUri": "vlan://100", "ip": "10.0.0.9",
                  "netmask": "255.255.255.0"}], "disks": []})


def client(p: AgentProcess, **kw: object) -> AgentClient:
    return AgentClient(p.endpoint(), username=USER, password=PASSWORD, **kw)  # type: ignore[arg-type]


def test_vms_survive_an_agent_killed_with_sigkill(agent: AgentProcess) -> None:
    async def before() -> str | None:
        async with client(agent) as c:
            out = await c.startup([StartupRoutingCommand(dataCenter="1", pod="2", cluster="3", guid="g-HypervResource",
                                                         name="127.0.0.1", privateIpAddress="127.0.0.1")])
            assert len(out) == 2
            for i in range(3):
                ans = await c.send(C.StartCommand(vm=vm(f"i-2-{i}-VM", f"02:00:00:00:01:0{i}")))
                assert ans.result, ans.details
            await c.send(C.StopCommand(vmName="i-2-2-VM"))
            return c.peer_sha256

    fingerprint = asyncio.run(before())
    agent.kill()
    agent.start()

    async def after() -> None:
        async with client(agent, pinned_sha256=fingerprint) as c:
            assert await c.vm_state_report() == {"i-2-0-VM": "PowerOn", "i-2-1-VM": "PowerOn"}
            ans = await c.send(C.CheckVirtualMachineCommand(vmName="i-2-1-VM"))
            assert isinstance(ans, A.CheckVirtualMachineAnswer) and ans.state == "PowerOn"
            again = await c.send(C.StartCommand(vm=vm("i-2-0-VM", "02:00:00:00:01:00")))
            assert again.result and again.details == "VM is already running"

    asyncio.run(after())
    assert (agent.data_dir / "identity.json").read_text().count("g-HypervResource") == 1


def test_pinned_certificate_mismatch_is_refused_before_the_command_is_sent(agent: AgentProcess) -> None:
    async def go() -> None:
        async with client(agent, pinned_sha256="00:11") as c:
            for _ in range(2):  # the refused connection is not kept for the next request either
                with pytest.raises(CertificateMismatch, match="does not match the pinned 00:11"):
                    await c.send(C.StartCommand(vm=vm("i-2-9-VM", "02:00:00:00:01:09")))
        async with client(agent) as c:
            assert "i-2-9-VM" not in await c.vm_state_report()

    asyncio.run(go())


def test_unsigned_and_unknown_requests_over_https(agent: AgentProcess) -> None:
    async def go() -> None:
        async with AgentClient(agent.endpoint()) as anonymous:
            with pytest.raises(AgentRefused) as err:
                await anonymous.send(C.ReadyCommand())
            assert err.value.status == 401
        async with client(agent) as c:
            with pytest.raises(AgentRefused) as err:
                await c.send_body("com.cloud.agent.api.CreateVMSnapshotCommand", {})
            assert err.value.status == 404

    asyncio.run(go())


def test_one_process_serves_several_simulated_hosts(tmp_path: Path) -> None:
    proc = AgentProcess(tmp_path / "multi", hosts=3, address="127.0.1.1").start()
    port = proc.port
    try:
        async def go() -> None:
            macs = set()
            for i in range(1, 4):
                addr = f"127.0.1.{i}"
                async with AgentClient(f"https://{addr}:{port}", username=USER, password=PASSWORD) as c:
                    out = await c.startup([StartupRoutingCommand(dataCenter="1", pod="1", cluster="1",
                                                                 guid=f"h{i}-HypervResource", name=addr,
                                                                 privateIpAddress=addr)])
                    routing = out[0]
                    assert isinstance(routing, StartupRoutingCommand)
                    assert routing.guid == f"h{i}-HypervResource"
                    macs.add(routing.privateMacAddress)
                    if i == 2:
                        assert (await c.send(C.StartCommand(vm=vm("i-9-9-VM", "02:00:00:00:09:09")))).result
            assert len(macs) == 3
            for i, expected in ((1, {}), (2, {"i-9-9-VM": "PowerOn"}), (3, {})):
                async with AgentClient(f"https://127.0.1.{i}:{port}", username=USER, password=PASSWORD) as c:
                    assert await c.vm_state_report() == expected

        asyncio.run(go())
    finally:
        proc.kill()


def _ca_and_client(tmp: Path) -> tuple[Path, tuple[str, str], tuple[str, str]]:
    """A CA, a client certificate it signs, and a self-signed impostor."""
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, stem: str) -> tuple[str, str]:
        kp, cp = tmp / f"{stem}.key", tmp / f"{stem}.pem"
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(cp), str(kp)

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    ca_path, _ = write(ca_key, ca, "ca")

    def leaf(cn: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(issuer_key, hashes.SHA256()))
        return write(key, cert, cn)

    good = leaf("mgmt-server", ca_key, ca.subject)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = leaf("rogue", rogue_key, name("rogue"))
    return Path(ca_path), good, rogue


def test_mtls_accepts_only_certificates_from_its_ca(tmp_path: Path) -> None:
    ca, good, rogue = _ca_and_client(tmp_path)
    proc = AgentProcess(tmp_path / "mtls", address="127.0.0.1", args=["--auth", "mtls", "--client-ca", str(ca)]).start()
    try:
        async def go() -> None:
            async with AgentClient(proc.endpoint(), cert=good) as c:
                assert (await c.send(C.ReadyCommand())).result
            for cert in (None, rogue):
                async with AgentClient(proc.endpoint(), cert=cert) as c:
                    with pytest.raises(AgentUnreachable):
                        await c.send(C.ReadyCommand())

        asyncio.run(go())
    finally:
        proc.kill()


def test_compat_mode_refuses_to_start_without_allow_list(tmp_path: Path) -> None:
    out = run_cli(["agent", "run", "--auth", "cloudstack-compat", "--data-dir", str(tmp_path / "x"),
                   "--listen", f"127.0.0.1:{free_port()}"])
    assert out.returncode == 2 and "--allow-from" in out.stderr


def test_compat_mode_checks_the_source_address(tmp_path: Path) -> None:
    allowed = AgentProcess(tmp_path / "c1", address="127.0.0.1",
                           args=["--auth", "cloudstack-compat", "--allow-from", "127.0.0.0/8"]).start()
    refused = AgentProcess(tmp_path / "c2", address="127.0.0.1",
                           args=["--auth", "cloudstack-compat", "--allow-from", "10.1.2.0/24"]).start()
    try:
        async def go() -> None:
            async with AgentClient(allowed.endpoint()) as c:
                assert (await c.send(C.ReadyCommand())).result
            async with AgentClient(refused.endpoint()) as c:
                with pytest.raises(AgentRefused) as err:
                    await c.send(C.ReadyCommand())
                assert err.value.status == 403

        asyncio.run(go())
    finally:
        allowed.kill()
        refused.kill()
