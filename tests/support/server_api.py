"""Helpers for the server API tests: a signing caller and a standard zone layout."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db.models import Account, TemplateStoreRef, User, VMTemplate
from hvcloud.server.state import ServerState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class Caller:
    """Signs requests with one user's keys, as the ``cs`` client does."""

    http: TestClient
    apikey: str
    secretkey: str

    def raw(self, params: dict[str, str], *, method: str = "GET", sign: bool = True) -> httpx.Response:
        params = {"apiKey": self.apikey, **params}
        if sign:
            params["signature"] = compute_signature(list(params.items()), self.secretkey)
        if method == "POST":
            return self.http.post("/client/api", data=params)
        return self.http.get("/client/api", params=params)

    def call(self, command: str, **params: Any) -> tuple[int, dict[str, Any]]:
        str_params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        resp = self.raw({"command": command, "response": "json", **str_params})
        body = resp.json()
        assert list(body) == [f"{command.lower()}response"] or list(body) == ["errorresponse"]
        return resp.status_code, next(iter(body.values()))

    def ok(self, command: str, **params: Any) -> dict[str, Any]:
        status, body = self.call(command, **params)
        assert status == 200, body
        return body


    def wait(self, jobid: str, timeout: float = 60) -> dict[str, Any]:
        """Poll ``queryAsyncJobResult`` until the job is no longer in progress."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.ok("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            assert time.monotonic() < deadline, f"job {jobid} still running: {job}"
            time.sleep(0.05)

    def job(self, command: str, **params: Any) -> dict[str, Any]:
        """Submit an async command and wait for its job."""
        return self.wait(self.ok(command, **params)["jobid"])


def keys_of(state: ServerState, username: str) -> tuple[str, str]:
    with state.sessions() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None and user.api_key and user.secret_key_enc
        return user.api_key, state.box.decrypt(user.secret_key_enc)


def build_zone(admin: Caller, name: str = "zone1") -> dict[str, str]:
    zone = admin.ok("createZone", name=name, networktype="Advanced", dns1="8.8.8.8",
                    internaldns1="10.0.0.1")["zone"]
    pod = admin.ok("createPod", name="pod1", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                   startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = admin.ok("addCluster", clustername="cl1", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    return {"zoneid": zone["id"], "podid": pod["id"], "clusterid": cluster["id"]}


def ready_template(db: Session, zone_id: str, name: str = "ready") -> VMTemplate:
    """A public QCOW2 template of the admin account, already downloaded to ``zone_id``'s image store
    (written straight to the database: no download to wait for)."""
    owner = db.scalars(select(Account).where(Account.name == "admin")).one()
    template = VMTemplate(name=name, display_text=name, format="QCOW2", hypervisor="Simulator",
                          account_id=owner.id, is_public=True)
    db.add(template)
    db.flush()
    db.add(TemplateStoreRef(template_id=template.id, zone_id=zone_id, download_state="DOWNLOADED",
                            install_path="template/tmpl/2/1/t.qcow2", size=1 << 30))
    return template
