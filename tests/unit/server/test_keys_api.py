"""The SSH key pair, user data and VM password API through the real HTTP endpoint: CloudStack's
shapes and codes, hostile input, and who may see and use whose keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from sqlalchemy import select

from hvcloud.server.db.models import Account, AsyncJob, TemplateStoreRef, VMInstance, VMTemplate
from hvcloud.server.orchestration import ssh_keys
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone


def _ed25519_line(comment: str = "me@host") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + \
        f" {comment}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        owner = db.scalars(select(Account).where(Account.name == "admin")).one()
        plain = VMTemplate(name="plain", display_text="plain", format="QCOW2", hypervisor="Simulator",
                           account_id=owner.id, is_public=True)
        pw = VMTemplate(name="pw", display_text="pw", format="QCOW2", hypervisor="Simulator", account_id=owner.id,
                        is_public=True, password_enabled=True, sshkey_enabled=True)
        db.add_all([plain, pw])
        db.flush()
        for t in (plain, pw):
            db.add(TemplateStoreRef(template_id=t.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                    install_path=f"template/tmpl/2/{t.id}/t.qcow2", size=1 << 30))
        plain_id, pw_id = plain.id, pw.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": plain_id, "pw_template": pw_id, "offering": offering}


def _deploy(caller: Caller, cloud: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    params = {"serviceofferingid": cloud["offering"], "templateid": cloud["template"], "zoneid": cloud["zoneid"],
              "startvm": "false", **kw}
    return caller.call("deployVirtualMachine", **params)


def _deployed(caller: Caller, cloud: dict[str, Any], **kw: Any) -> dict[str, Any]:
    status, body = _deploy(caller, cloud, **kw)
    assert status == 200, body
    job = caller.wait(body["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _set_state(state: ServerState, vm_id: str, vm_state: str) -> None:
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, vm_id)
        assert vm is not None
        vm.state = vm_state


def _domain_of(admin: Caller) -> str:
    return admin.ok("listAccounts", name="alice")["account"][0]["domainid"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- key pairs


def test_key_pair_lifecycle(admin: Caller) -> None:
    created = admin.ok("createSSHKeyPair", name="k1")["keypair"]
    assert set(created) >= {"id", "name", "fingerprint", "privatekey", "account", "domainid", "domain"}
    key = serialization.load_pem_private_key(created["privatekey"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert created["fingerprint"] == ssh_keys.fingerprint(public.decode())

    line = _ed25519_line()
    registered = admin.ok("registerSSHKeyPair", name="k2", publickey=line)["keypair"]
    assert "privatekey" not in registered and registered["fingerprint"] == ssh_keys.fingerprint(line)

    listed = admin.ok("listSSHKeyPairs")
    assert listed["count"] == 2 and {k["name"] for k in listed["sshkeypair"]} == {"k1", "k2"}
    assert all("privatekey" not in k for k in listed["sshkeypair"])
    assert admin.ok("listSSHKeyPairs", name="k1")["sshkeypair"][0]["id"] == created["id"]
    assert admin.ok("listSSHKeyPairs", id=registered["id"])["sshkeypair"][0]["name"] == "k2"
    assert admin.ok("listSSHKeyPairs", fingerprint=registered["fingerprint"])["count"] == 1
    assert admin.ok("listSSHKeyPairs", keyword=created["fingerprint"][3:14])["count"] == 1
    assert admin.ok("listSSHKeyPairs", keyword="%") == {}
    page = admin.ok("listSSHKeyPairs", page="2", pagesize="1")
    assert page["count"] == 2 and len(page["sshkeypair"]) == 1

    status, body = admin.call("createSSHKeyPair", name="k1")
    assert status == 431 and body["errortext"] == "A key pair with name 'k1' already exists."
    status, body = admin.call("registerSSHKeyPair", name="k2", publickey=_ed25519_line())
    assert status == 431 and "already exists for this account" in body["errortext"]
    status, body = admin.call("registerSSHKeyPair", name="k3", publickey=line.replace("me@host", "other"))
    assert status == 431 and "A key pair with key 'ssh-ed25519 " in body["errortext"]
    for bad in ("", "x" * 256):
        assert admin.call("createSSHKeyPair", name=bad)[0] == 431
    for material in ("ssh-rsa AAAA", "not a key", "ssh-ed25519 " + "A" * 20000):
        status, body = admin.call("registerSSHKeyPair", name="bad", publickey=material)
        assert status == 431, body

    assert admin.ok("deleteSSHKeyPair", name="k1") == {"success": "true"}
    status, body = admin.call("deleteSSHKeyPair", name="k1")
    assert status == 431 and "does not exist for account admin" in body["errortext"]
    assert admin.ok("listSSHKeyPairs")["count"] == 1


def test_key_pairs_are_private_to_their_account(admin: Caller, user_caller: Caller) -> None:
    domain = _domain_of(admin)
    admin.ok("createSSHKeyPair", name="shared-name")
    mine = user_caller.ok("createSSHKeyPair", name="shared-name")["keypair"]  # names are per account
    assert mine["account"] == "alice"
    assert [k["account"] for k in user_caller.ok("listSSHKeyPairs")["sshkeypair"]] == ["alice"]
    assert [k["account"] for k in user_caller.ok("listSSHKeyPairs", listall="true")["sshkeypair"]] == ["alice"]
    assert [k["account"] for k in admin.ok("listSSHKeyPairs")["sshkeypair"]] == ["admin"]
    assert admin.ok("listSSHKeyPairs", listall="true")["count"] == 2
    assert admin.ok("listSSHKeyPairs", account="alice", domainid=domain)["sshkeypair"][0]["id"] == mine["id"]
    assert admin.ok("listSSHKeyPairs", domainid=domain, isrecursive="true")["count"] == 2
    assert admin.call("listSSHKeyPairs", account="alice")[0] == 431
    assert admin.call("listSSHKeyPairs", account="nobody", domainid=domain)[0] == 431

    # a user may not act for, or list, another account
    assert user_caller.call("listSSHKeyPairs", account="admin", domainid=domain)[0] == 531
    assert user_caller.call("createSSHKeyPair", name="x", account="admin", domainid=domain)[0] == 531
    assert user_caller.call("deleteSSHKeyPair", name="x", account="admin", domainid=domain)[0] == 531
    assert user_caller.call("listSSHKeyPairs", domainid="0b7e3c3e-0000-4000-8000-000000000000")[0] == 531
    # the user's delete of the admin's name deletes its own key only
    assert user_caller.ok("deleteSSHKeyPair", name="shared-name") == {"success": "true"}
    assert admin.ok("listSSHKeyPairs")["count"] == 1

    # an admin creates and deletes a key pair for another account
    made = admin.ok("createSSHKeyPair", name="for-alice", account="alice", domainid=domain)["keypair"]
    assert made["account"] == "alice"
    assert user_caller.ok("listSSHKeyPairs", name="for-alice")["count"] == 1
    assert admin.call("createSSHKeyPair", name="x", account="alice")[0] == 431
    assert admin.ok("deleteSSHKeyPair", name="for-alice", account="alice", domainid=domain)["success"] == "true"
    assert admin.call("createSSHKeyPair", name="x", projectid="0b7e3c3e-0000-4000-8000-000000000000")[0] == 431


# ---------------------------------------------------------------------- user data


def test_registered_user_data(admin: Caller, user_caller: Caller) -> None:
    content = _b64(b"#cloud-config\nhostname: {{ ds.meta_data.role }}\n")
    row = admin.ok("registerUserData", name="web", userdata=content, params="role")["userdata"]
    assert row["userdata"] == content and row["params"] == "role" and row["account"] == "admin"
    assert admin.ok("listUserData")["userdata"][0]["id"] == row["id"]
    assert admin.ok("listUserData", keyword="we")["count"] == 1 and admin.ok("listUserData", name="nope") == {}
    assert user_caller.ok("listUserData") == {} and user_caller.ok("listUserData", listall="true") == {}
    assert user_caller.call("deleteUserData", id=row["id"])[0] == 431

    status, body = admin.call("registerUserData", name="web", userdata=_b64(b"other"))
    assert status == 431 and "already exists for this account" in body["errortext"]
    status, body = admin.call("registerUserData", name="web2", userdata=content)
    assert status == 431 and "same content" in body["errortext"]
    for bad in ({"userdata": "***"}, {"userdata": ""}, {"userdata": "QUJD" * 1100},
                {"userdata": _b64(b"x"), "params": "public-keys"}, {"userdata": _b64(b"x"), "params": "a,a"}):
        status, body = admin.call("registerUserData", name="bad", **bad)
        assert status == 431, (bad, body)

    # POST takes more than GET, up to vm.userdata.max.length characters
    big = _b64(b"#!/bin/sh\n" + b"x" * 20000)
    status, body = admin.call("registerUserData", name="big", userdata=big)
    assert status == 431 and "too long for an http GET" in body["errortext"]
    resp = admin.raw({"command": "registerUserData", "response": "json", "name": "big", "userdata": big},
                     method="POST")
    assert resp.status_code == 200, resp.text
    assert resp.json()["registeruserdataresponse"]["userdata"]["userdata"] == big
    too_big = _b64(b"y" * 30000)
    resp = admin.raw({"command": "registerUserData", "response": "json", "name": "huge", "userdata": too_big},
                     method="POST")
    assert resp.status_code == 431 and "configurable max length : 32768" in resp.text

    assert admin.ok("deleteUserData", id=row["id"]) == {"success": "true"}
    assert admin.call("deleteUserData", id=row["id"])[0] == 431


def test_deploy_with_keys_and_user_data(state: ServerState, admin: Caller, user_caller: Caller,
                                        cloud: dict[str, Any]) -> None:
    line = _ed25519_line()
    user_caller.ok("registerSSHKeyPair", name="laptop", publickey=line)
    user_caller.ok("createSSHKeyPair", name="ci")
    admin.ok("createSSHKeyPair", name="admins-key")
    content = _b64(b"#cloud-config\n")
    data = user_caller.ok("registerUserData", name="base", userdata=content, params="role,size")["userdata"]
    foreign = admin.ok("registerUserData", name="admins", userdata=_b64(b"secret"))["userdata"]

    vm = _deployed(user_caller, cloud, keypairs="laptop,ci", userdataid=data["id"],
                   **{"userdatadetails[0].role": "web", "userdatadetails[0].size": "L"})
    assert vm["keypairs"] == "laptop,ci" and vm["keypair"] == "laptop,ci"
    assert vm["userdataid"] == data["id"] and vm["userdataname"] == "base"
    assert vm["userdatadetails"] == "{role=web, size=L}" and "password" not in vm
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None and row.user_data == content
        assert row.ssh_public_keys is not None and row.ssh_public_keys.split("\n")[0] == ssh_keys.normalise(line)
    got = user_caller.ok("getVirtualMachineUserData", virtualmachineid=vm["id"])["virtualmachineuserdata"]
    assert got == {"virtualmachineid": vm["id"], "userdata": content}
    assert admin.ok("listVirtualMachines", id=vm["id"], listall="true")["virtualmachine"][0]["keypairs"] == "laptop,ci"

    # a key pair or user data the account does not have is an error naming the parameter
    for params, name in (({"keypairs": "laptop,admins-key"}, "keypairs"), ({"keypair": "admins-key"}, "keypair"),
                         ({"keypair": "nope"}, "keypair")):
        status, body = _deploy(user_caller, cloud, **params)
        assert status == 431 and f"Invalid parameter {name}" in body["errortext"], body
    status, body = _deploy(user_caller, cloud, userdataid=foreign["id"])
    assert status == 431 and "userdataid" in body["errortext"]
    status, body = _deploy(user_caller, cloud, userdataid="0b7e3c3e-0000-4000-8000-000000000000")
    assert status == 431 and "userdataid" in body["errortext"]
    status, body = _deploy(user_caller, cloud, userdataid=data["id"], **{"userdatadetails[0].role": "web"})
    assert status == 431 and "size" in body["errortext"]
    status, body = _deploy(user_caller, cloud, userdataid=data["id"], userdata=content)
    assert status == 431 and "only one" in body["errortext"]
    status, body = _deploy(user_caller, cloud, userdata=content, **{"userdatadetails[0].role": "web"})
    assert status == 431
    status, body = _deploy(user_caller, cloud, userdata="%%%")
    assert status == 431

    # deleting user data a VM uses is refused as CloudStack refuses it
    status, body = user_caller.call("deleteUserData", id=data["id"])
    assert status == 530 and "being used by some VMs" in body["errortext"]

    # updateVirtualMachine replaces the user data; the reference goes with it
    new = _b64(b"#!/bin/sh\necho hi\n")
    updated = user_caller.ok("updateVirtualMachine", id=vm["id"], userdata=new)["virtualmachine"]
    assert updated["userdata"] == new and "userdataid" not in updated and "userdatadetails" not in updated
    assert user_caller.ok("deleteUserData", id=data["id"]) == {"success": "true"}
    assert user_caller.call("updateVirtualMachine", id=vm["id"], userdataid=foreign["id"])[0] == 431
    assert admin.ok("getVirtualMachineUserData", virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == new
    assert user_caller.call("getVirtualMachineUserData", virtualmachineid=_deployed(admin, cloud)["id"])[0] == 431


# ---------------------------------------------------------------------- passwords and resets


def _decrypt(private_pem: str, encrypted: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()).decode()


def test_passwords_and_resets(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    private = user_caller.ok("createSSHKeyPair", name="rsa")["keypair"]["privatekey"]
    user_caller.ok("registerSSHKeyPair", name="ed", publickey=_ed25519_line())
    vm = _deployed(user_caller, cloud, templateid=cloud["pw_template"], keypair="rsa")
    password = vm["password"]
    assert len(password) >= 6 and vm["passwordenabled"] is True
    assert "password" not in user_caller.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]
    encrypted = user_caller.ok("getVMPassword", id=vm["id"])["password"]["encryptedpassword"]
    assert _decrypt(private, encrypted) == password
    assert admin.call("getVMPassword", id=vm["id"])[0] == 200
    other = _deployed(admin, cloud, templateid=cloud["pw_template"])
    assert user_caller.call("getVMPassword", id=other["id"])[0] == 431
    status, body = admin.call("getVMPassword", id=other["id"])  # no key pair to encrypt with
    assert status == 431 and "No password" in body["errortext"]

    reset = user_caller.job("resetPasswordForVirtualMachine", id=vm["id"])
    assert reset["jobstatus"] == 1, reset
    new_password = reset["jobresult"]["virtualmachine"]["password"]
    assert new_password != password
    assert _decrypt(private, user_caller.ok("getVMPassword", id=vm["id"])["password"]["encryptedpassword"]) == \
        new_password

    # SSH key reset: the new keys, and (password-enabled template) a new password
    second = user_caller.ok("createSSHKeyPair", name="rsa2")["keypair"]["privatekey"]
    job = user_caller.job("resetSSHKeyForVirtualMachine", id=vm["id"], keypairs="rsa2,ed")
    assert job["jobstatus"] == 1, job
    after = job["jobresult"]["virtualmachine"]
    assert after["keypairs"] == "rsa2,ed" and after["password"] != new_password
    assert _decrypt(second, user_caller.ok("getVMPassword", id=vm["id"])["password"]["encryptedpassword"]) == \
        after["password"]
    job = user_caller.job("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="ed")
    assert job["jobresult"]["virtualmachine"]["keypairs"] == "ed"
    status, body = user_caller.call("getVMPassword", id=vm["id"])  # an ed25519 key cannot encrypt it
    assert status == 431

    for params in ({}, {"keypair": ""}, {"keypairs": "nope"}, {"keypair": "rsa", "keypairs": "missing"}):
        status, body = user_caller.call("resetSSHKeyForVirtualMachine", id=vm["id"], **params)
        assert status == 431, (params, body)
    admin.ok("createSSHKeyPair", name="admin-rsa")
    status, body = user_caller.call("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="admin-rsa")
    assert status == 431 and "keypair" in body["errortext"]
    assert user_caller.call("resetSSHKeyForVirtualMachine", id=other["id"], keypair="rsa")[0] == 431
    domain = _domain_of(admin)
    status, body = admin.call("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="admin-rsa", account="admin",
                              domainid=admin.ok("listAccounts", name="admin")["account"][0]["domainid"])
    assert status == 431 and "VM's account" in body["errortext"]
    job = admin.job("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="rsa", account="alice", domainid=domain)
    assert job["jobstatus"] == 1 and job["jobresult"]["virtualmachine"]["keypairs"] == "rsa"

    # only Stopped VMs, as CloudStack
    _set_state(state, vm["id"], S.RUNNING)
    status, body = user_caller.call("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="rsa")
    assert status == 431 and "should be stopped to do SSH Key reset" in body["errortext"]
    status, body = user_caller.call("resetPasswordForVirtualMachine", id=vm["id"])
    assert status == 431 and "should be stopped to do password reset" in body["errortext"]
    _set_state(state, vm["id"], S.STOPPED)

    plain = _deployed(user_caller, cloud, keypair="rsa")
    assert "password" not in plain
    status, body = user_caller.call("resetPasswordForVirtualMachine", id=plain["id"])
    assert status == 431 and "not password enabled" in body["errortext"]
    status, body = user_caller.call("getVMPassword", id=plain["id"])
    assert status == 431
    job = user_caller.job("resetSSHKeyForVirtualMachine", id=plain["id"], keypair="ed")
    assert job["jobstatus"] == 1 and "password" not in job["jobresult"]["virtualmachine"]


def test_a_vm_keeps_its_copy_of_a_deleted_key_pair(state: ServerState, user_caller: Caller,
                                                   cloud: dict[str, Any]) -> None:
    line = _ed25519_line()
    user_caller.ok("registerSSHKeyPair", name="gone", publickey=line)
    vm = _deployed(user_caller, cloud, keypair="gone")
    user_caller.ok("deleteSSHKeyPair", name="gone")
    assert user_caller.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["keypairs"] == "gone"
    with state.sessions() as db:
        assert db.scalar(select(VMInstance.ssh_public_keys).where(VMInstance.id == vm["id"])) == \
            ssh_keys.normalise(line)
    # the name is free again, and a new key under it is what a reset gives the VM
    user_caller.ok("registerSSHKeyPair", name="gone", publickey=(other := _ed25519_line()))
    job = user_caller.job("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="gone")
    assert job["jobstatus"] == 1
    with state.sessions() as db:
        assert db.scalar(select(VMInstance.ssh_public_keys).where(VMInstance.id == vm["id"])) == \
            ssh_keys.normalise(other)


def test_deleting_an_account_removes_its_keys_and_user_data(state: ServerState, admin: Caller,
                                                             user_caller: Caller, cloud: dict[str, Any]) -> None:
    user_caller.ok("createSSHKeyPair", name="k")
    data = user_caller.ok("registerUserData", name="d", userdata=_b64(b"x"))["userdata"]
    vm = _deployed(user_caller, cloud, keypair="k", userdataid=data["id"])
    account = admin.ok("listAccounts", name="alice")["account"][0]
    assert admin.job("deleteAccount", id=account["id"])["jobstatus"] == 1
    assert admin.ok("listSSHKeyPairs", listall="true") == {} and admin.ok("listUserData", listall="true") == {}
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None and row.user_data_id is None and row.user_data == _b64(b"x")


def test_settings_bounds() -> None:
    from hvcloud.server.config import parse_settings

    assert parse_settings({"vm.userdata.max.length": "1048576", "vm.password.length": "12"}) == \
        {"vm_userdata_max_length": 1048576, "vm_password_length": 12}
    for bad in ({"vm.userdata.max.length": "1048577"}, {"vm.userdata.max.length": "0"},
                {"vm.password.length": "5"}, {"vm.password.length": "x"}):
        with pytest.raises(ValueError):
            parse_settings(bad)


def test_changes_reach_the_routers(monkeypatch: pytest.MonkeyPatch, state: ServerState, admin: Caller,
                                   cloud: dict[str, Any]) -> None:
    """User data, key and password changes call ``networks.routing.refresh_vm_data`` for the VM; a
    router that cannot be reached fails nothing (the change is committed; the VM's next start
    publishes it)."""
    from hvcloud.server.orchestration.networks import routing
    from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
    from tests.support.wait import wait_for

    calls: list[str] = []
    fail = {"on": False}

    async def record(steps: Steps, vm_id: str) -> None:
        calls.append(vm_id)
        if fail["on"]:
            raise StepFailed("router r-1 did not answer")

    monkeypatch.setattr(routing, "refresh_vm_data", record)
    admin.ok("createSSHKeyPair", name="k")
    vm = _deployed(admin, cloud, templateid=cloud["pw_template"])
    assert calls == []
    admin.ok("updateVirtualMachine", id=vm["id"], userdata=_b64(b"new"))
    wait_for("the user data refresh", lambda: calls == [vm["id"]])
    assert admin.job("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="k")["jobstatus"] == 1
    assert calls == [vm["id"]] * 2
    fail["on"] = True
    job = admin.job("resetPasswordForVirtualMachine", id=vm["id"])
    assert job["jobstatus"] == 1 and calls == [vm["id"]] * 3
    admin.ok("updateVirtualMachine", id=vm["id"], displayname="no user data change")
    admin.ok("updateVirtualMachine", id=vm["id"], userdata=_b64(b"newer"))
    wait_for("the second user data refresh", lambda: len(calls) == 4)
    with state.sessions() as db:
        queued = db.scalars(select(AsyncJob.handler).where(AsyncJob.instance_id == vm["id"])).all()
    assert sorted(h for h in queued if h and "refresh" in h) == ["vm.refresh_vm_data"] * 2
    assert admin.ok("getVirtualMachineUserData", virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] \
        == _b64(b"newer")


def test_out_of_order_calls_are_refused(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    admin.ok("createSSHKeyPair", name="k")
    assert admin.call("deleteUserData", id="0b7e3c3e-0000-4000-8000-000000000000")[0] == 431
    assert admin.call("deleteSSHKeyPair", name="never-made")[0] == 431
    vm = _deployed(admin, cloud, templateid=cloud["pw_template"], keypair="k")
    assert admin.job("destroyVirtualMachine", id=vm["id"])["jobstatus"] == 1
    status, body = admin.call("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="k")
    assert status == 431 and "not in the right state" in body["errortext"]
    assert admin.call("resetPasswordForVirtualMachine", id=vm["id"])[0] == 431
    assert admin.job("destroyVirtualMachine", id=vm["id"], expunge="true")["jobstatus"] == 1
    for command, params in (("getVMPassword", {"id": vm["id"]}),
                            ("getVirtualMachineUserData", {"virtualmachineid": vm["id"]}),
                            ("resetSSHKeyForVirtualMachine", {"id": vm["id"], "keypair": "k"}),
                            ("resetPasswordForVirtualMachine", {"id": vm["id"]})):
        assert admin.call(command, **params)[0] == 431, command
