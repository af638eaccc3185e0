"""Secrets never reach logs, events or API responses (other than one's own keys, on request).

A real server process at the production log level, and a real agent process, are driven through a
scenario that hands them every kind of secret: user passwords (create, change, login), API secret
keys, an agent/cluster password, an SMB share password inside a URL, and S3 secret keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from hvcloud.agent_client import AgentClient, AgentRefused
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db.seed import ADMIN_PASSWORD_FILE
from hvcloud.wire import commands as C
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.server_process import ServerProcess

SECRETS = {
    "alice-password": "Alice-Pw-7f3a9c",
    "alice-new-password": "Alice-New-Pw-2b8d1e",
    "cluster-password": "Cluster-Pw-5e6f7a",
    "smb-password": "Smb-Pw-8c9d0e",
    "s3-secret": "S3-Secret-1a2b3c4d",
}


class Api:
    def __init__(self, server: ServerProcess, apikey: str, secret: str) -> None:
        self.server, self.apikey, self.secret = server, apikey, secret
        self.responses: list[tuple[str, str]] = []

    def call(self, command: str, *, method: str = "GET", **params: str) -> tuple[int, dict[str, Any]]:
        pairs = [("apiKey", self.apikey), ("command", command), ("response", "json"), *params.items()]
        pairs.append(("signature", compute_signature(pairs, self.secret)))
        if method == "POST":
            r = httpx.post(self.server.endpoint, data=dict(pairs), timeout=30)
        else:
            r = httpx.get(f"{self.server.endpoint}?{urlencode(pairs)}", timeout=30)
        self.responses.append((command, r.text))
        return r.status_code, next(iter(r.json().values()))

    def ok(self, command: str, **params: str) -> dict[str, Any]:
        status, body = self.call(command, **params)
        assert status == 200, body
        return body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("secrets") / "data"
    data.mkdir()
    proc = ServerProcess(data, None, log_level="info")
    yield proc
    proc.stop()


def _found(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


def test_server_secrets_stay_out_of_logs_events_and_responses(server: ServerProcess) -> None:
    admin = Api(server, server.keys["apikey"], server.keys["secretkey"])
    secrets = dict(SECRETS, **{"admin-secret-key": server.keys["secretkey"],
                               "admin-password": (server.data_dir / ADMIN_PASSWORD_FILE).read_text().strip()})
    zone = admin.ok("createZone", name="z", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")["zone"]
    pod = admin.ok("createPod", name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                   startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = admin.ok("addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod["id"], zoneid=zone["id"], username="agent", password=SECRETS["cluster-password"],
                       url="http://10.0.0.7")["cluster"][0]
    admin.ok("createStoragePool", name="smb", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
             url=f"smb://10.0.0.8/share?user=ops&password={SECRETS['smb-password']}&domain=LAB")
    admin.ok("addImageStoreS3", accesskey="AKIAFUZZ", secretkey=SECRETS["s3-secret"], bucket="templates",
             endpoint="s3.example.test")
    account = admin.ok("createAccount", username="alice", password=SECRETS["alice-password"], firstname="A",
                       lastname="L", accounttype="0")["account"]
    alice_id = account["user"][0]["id"]
    keys = admin.ok("registerUserKeys", id=alice_id)["userkeys"]
    secrets["alice-secret-key"] = keys["secretkey"]
    designed = {len(admin.responses) - 1}
    alice = Api(server, keys["apikey"], keys["secretkey"])
    alice.ok("updateUser", id=alice_id, password=SECRETS["alice-new-password"],
             currentpassword=SECRETS["alice-password"])
    login = httpx.post(server.endpoint, data={"command": "login", "username": "alice", "response": "json",
                                              "password": SECRETS["alice-new-password"]}, timeout=30)
    assert login.status_code == 200 and _found(login.text, secrets) == []
    bad_login = httpx.post(server.endpoint, data={"command": "login", "username": "alice", "response": "json",
                                                  "password": SECRETS["alice-password"]}, timeout=30)
    assert bad_login.status_code == 531 and _found(bad_login.text, secrets) == []
    own = alice.ok("getUserKeys", id=alice_id)["userkeys"]
    assert own["secretkey"] == keys["secretkey"]
    # a user's view of other users never carries secret keys
    assert alice.call("getUserKeys", id=admin.ok("listUsers", username="admin")["user"][0]["id"])[0] == 431
    for command in ("listUsers", "listAccounts", "listClusters", "listStoragePools", "listImageStores",
                    "listEvents", "listAsyncJobs", "listHosts", "listZones", "listAlerts", "listApis"):
        admin.call(command, listall="true")
    for command in ("listUsers", "listAccounts", "listEvents", "listApis"):
        alice.call(command, listall="true")
    for i, (command, text) in enumerate(admin.responses):
        if i not in designed:
            assert _found(text, secrets) == [], f"{command} response shows a secret"
    for command, text in alice.responses:
        if command != "getUserKeys":
            assert _found(text, secrets) == [], f"{command} response shows a secret"
    events = admin.ok("listEvents", listall="true", pagesize="-1")
    assert events["count"] >= 5 and _found(str(events), secrets) == []
    server.log.flush()
    log = server.log_path.read_text(errors="replace")
    assert '"GET /client/api?command=createAccount HTTP/1.1" 200' in log, "the access log is on, redacted"
    assert _found(log, secrets) == [], "the server log shows a secret"


def test_agent_password_stays_out_of_its_log(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "agent", address="127.0.0.1", log_level="debug").start()
    try:
        async def go() -> None:
            async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
                assert (await c.send(C.ReadyCommand())).result
            async with AgentClient(agent.endpoint(), username=USER, password="wrong-" + PASSWORD) as c:
                with pytest.raises(AgentRefused) as err:
                    await c.send(C.ReadyCommand())
                assert err.value.status == 401

        asyncio.run(go())
    finally:
        agent.kill()
    log = agent.log_path.read_text(errors="replace")
    assert "request refused" in log
    assert PASSWORD not in log


def test_access_log_paths_keep_only_the_command() -> None:
    """Regression: uvicorn's access log printed whole query strings, passwords and secret keys included."""
    from hvcloud.server.access_log import redact_path

    assert redact_path("/client/api?apiKey=k&command=createAccount&password=p") == "/client/api?command=createAccount"
    assert redact_path("/client/api?COMMAND=a%20b&secretkey=s") == "/client/api?command=a%20b"
    assert redact_path("/client/api?secretkey=s") == "/client/api?\u2026"
    assert redact_path("/client/api") == "/client/api"
