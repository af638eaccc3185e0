"""Per-account resource limits (listResourceLimits, updateResourceLimit, updateResourceCount) and their
enforcement when VMs, volumes and templates are allocated, over the API on a real SQLite database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from hvcloud.server.db.models import Account, ResourceCount
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller
from tests.unit.server.test_vm_api import _deploy, cloud  # noqa: F401  (the fixture is used by name)

TiB_GB = 64 * 1024  # the largest volume createVolume accepts, in GB


def _root_domain(admin: Caller) -> str:
    return str(admin.ok("listDomains", name="ROOT")["domain"][0]["id"])


def _limit(caller: Caller, resourcetype: int, **kw: Any) -> int:
    found = caller.ok("listResourceLimits", resourcetype=resourcetype, **kw)["resourcelimit"]
    assert len(found) == 1
    return int(found[0]["max"])


def _set_limit(admin: Caller, resourcetype: int, value: int, account: str = "alice") -> dict[str, Any]:
    return admin.ok("updateResourceLimit", resourcetype=resourcetype, max=value, account=account,
                    domainid=_root_domain(admin))["resourcelimit"]


def _custom_disk(admin: Caller) -> str:
    return str(admin.ok("listDiskOfferings", name="Custom")["diskoffering"][0]["id"])


def test_forty_huge_volumes_are_refused_at_the_limits(admin: Caller, user_caller: Caller,
                                                      cloud: dict[str, Any]) -> None:  # noqa: F811
    custom = _custom_disk(admin)
    status, body = user_caller.call("createVolume", diskofferingid=custom, size=TiB_GB, zoneid=cloud["zoneid"])
    assert status == 535, body
    assert body["cserrorcode"] == 4370
    root = _root_domain(admin)
    assert body["errortext"] == (f"Maximum number of resources of type 'primary_storage' for account name=alice "
                                 f"in domain id={root} has been exceeded.")
    _set_limit(admin, 10, -1)  # primary storage unlimited: the volume count (20 by default) still holds
    answers = [user_caller.call("createVolume", diskofferingid=custom, size=TiB_GB, zoneid=cloud["zoneid"])
               for _ in range(40)]
    assert [s for s, _ in answers].count(200) == 20
    refused = [b for s, b in answers if s != 200]
    assert len(refused) == 20 and {b["errorcode"] for b in refused} == {535}
    assert "of type 'volume' for account name=alice" in refused[0]["errortext"]
    assert user_caller.ok("listVolumes")["count"] == 20


def test_instance_limit_on_deploy_and_counts_return_after_expunge(admin: Caller, user_caller: Caller,
                                                                  cloud: dict[str, Any]) -> None:  # noqa: F811
    assert _limit(user_caller, 0) == 20
    assert _set_limit(admin, 0, 2)["max"] == 2
    assert _limit(user_caller, 0) == 2
    vms = [user_caller.wait(_deploy(user_caller, cloud)[1]["jobid"])["jobresult"]["virtualmachine"]
           for _ in range(2)]
    status, body = _deploy(user_caller, cloud)
    assert status == 535 and body["cserrorcode"] == 4370
    assert "Maximum number of resources of type 'user_vm' for account name=alice" in body["errortext"]
    assert user_caller.ok("listVirtualMachines")["count"] == 2
    # a destroyed VM still holds its share until it is expunged
    assert user_caller.job("destroyVirtualMachine", id=vms[0]["id"])["jobstatus"] == 1
    assert _deploy(user_caller, cloud)[0] == 535
    assert admin.job("expungeVirtualMachine", id=vms[0]["id"])["jobstatus"] == 1
    status, body = _deploy(user_caller, cloud)
    assert status == 200, body
    counts = admin.ok("updateResourceCount", domainid=_root_domain(admin), account="alice")["resourcecount"]
    by_name = {c["resourcetypename"]: c["resourcecount"] for c in counts}
    assert by_name["user_vm"] == 2 and by_name["volume"] == 2 and by_name["cpu"] == 2


def test_cpu_and_memory_limits_hold_on_deploy_and_scale(admin: Caller, user_caller: Caller,
                                                        cloud: dict[str, Any]) -> None:  # noqa: F811
    _set_limit(admin, 9, 600)  # MiB: one Small Instance (512 MiB)
    vm = user_caller.wait(_deploy(user_caller, cloud)[1]["jobid"])["jobresult"]["virtualmachine"]
    status, body = _deploy(user_caller, cloud)
    assert status == 535 and "'memory'" in body["errortext"]
    medium = admin.ok("listServiceOfferings", name="Medium Instance")["serviceoffering"][0]["id"]
    status, body = user_caller.call("scaleVirtualMachine", id=vm["id"], serviceofferingid=medium)
    assert status == 535 and "'memory'" in body["errortext"]
    _set_limit(admin, 9, -1)
    _set_limit(admin, 8, 1)
    assert _deploy(user_caller, cloud)[0] == 535


def test_deleted_volumes_give_their_share_back(admin: Caller, user_caller: Caller,
                                               cloud: dict[str, Any]) -> None:  # noqa: F811
    _set_limit(admin, 2, 1)
    custom = _custom_disk(admin)
    first = user_caller.job("createVolume", diskofferingid=custom, size=5, zoneid=cloud["zoneid"])
    volume = first["jobresult"]["volume"]
    assert user_caller.call("createVolume", diskofferingid=custom, size=5, zoneid=cloud["zoneid"])[0] == 535
    assert user_caller.ok("deleteVolume", id=volume["id"])["success"] == "true"
    assert user_caller.call("createVolume", diskofferingid=custom, size=5, zoneid=cloud["zoneid"])[0] == 200


def test_resize_is_held_to_the_primary_storage_limit(admin: Caller, user_caller: Caller,
                                                     cloud: dict[str, Any]) -> None:  # noqa: F811
    _set_limit(admin, 10, 10)  # GiB
    custom = _custom_disk(admin)
    volume = user_caller.job("createVolume", diskofferingid=custom, size=4, zoneid=cloud["zoneid"])["jobresult"]
    status, body = user_caller.call("resizeVolume", id=volume["volume"]["id"], size=11)
    assert status == 535 and "'primary_storage'" in body["errortext"]
    assert user_caller.job("resizeVolume", id=volume["volume"]["id"], size=10)["jobstatus"] == 1
    assert user_caller.call("createVolume", diskofferingid=custom, size=1, zoneid=cloud["zoneid"])[0] == 535
    listed = user_caller.ok("listResourceLimits", resourcetypename="primary_storage")["resourcelimit"]
    assert listed == [{"account": "alice", "domainid": _root_domain(admin), "domain": "ROOT", "domainpath": "ROOT",
                       "resourcetype": "10", "resourcetypename": "primary_storage", "max": 10}]


def test_template_count_is_limited(admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    admin.ok("addImageStore", provider="NFS", url="nfs://10.0.0.6/export/secondary", zoneid=cloud["zoneid"])
    _set_limit(admin, 4, 1)
    params = {"name": "t", "format": "QCOW2", "hypervisor": "Simulator", "zoneid": cloud["zoneid"],
              "ostypeid": admin.ok("listOsTypes")["ostype"][0]["id"]}
    assert user_caller.call("getUploadParamsForTemplate", **params)[0] == 200
    status, body = user_caller.call("getUploadParamsForTemplate", **params)
    assert status == 535 and "'template'" in body["errortext"]


def test_only_admins_change_limits_and_bad_input_is_refused(admin: Caller, user_caller: Caller) -> None:
    root = _root_domain(admin)
    status, body = user_caller.call("updateResourceLimit", resourcetype=0, max=1000, account="alice", domainid=root)
    assert status == 401, body
    assert user_caller.call("updateResourceCount", domainid=root, account="alice")[0] == 401
    assert _limit(user_caller, 0) == 20
    # a user sees only its own limits, whatever it asks for
    assert _limit(user_caller, 0, account="admin", domainid=root) == 20
    assert _limit(admin, 0) == -1
    for bad in ({"resourcetype": "12"}, {"resourcetype": "-1"}, {"resourcetype": "x"},
                {"resourcetype": "0", "max": "-2"}, {"resourcetype": "0", "max": "ten"},
                {"resourcetype": "0", "max": "99999999999999999999"},
                {"resourcetype": "10", "max": str(2**33)},
                {"resourcetype": "0", "max": "5", "account": "alice"},
                {"resourcetype": "0", "max": "5", "account": "nobody", "domainid": root},
                {"resourcetype": "0", "max": "5", "account": "admin", "domainid": root},
                {"resourcetype": "0", "max": "5", "domainid": root},
                {"resourcetype": "0", "max": "5"}):
        status, body = admin.call("updateResourceLimit", **bad)
        assert status == 431, (bad, body)
        assert "SELECT" not in body["errortext"] and "Traceback" not in body["errortext"]
    for bad in ({"resourcetype": "99"}, {"resourcetypename": "gpu"}, {"resourcetype": "1", "resourcetypename": "cpu"}):
        assert admin.call("listResourceLimits", **bad)[0] == 431
    assert _limit(user_caller, 0) == 20
    names = [r["resourcetypename"] for r in user_caller.ok("listResourceLimits")["resourcelimit"]]
    assert names == ["user_vm", "public_ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu",
                     "memory", "primary_storage", "secondary_storage"]


def test_update_resource_count_recomputes_from_the_real_rows(state: ServerState, admin: Caller,
                                                             user_caller: Caller,
                                                             cloud: dict[str, Any]) -> None:  # noqa: F811
    user_caller.wait(_deploy(user_caller, cloud)[1]["jobid"])
    with state.sessions.begin() as db:
        alice = db.scalar(select(Account.id).where(Account.name == "alice"))
        db.execute(update(ResourceCount).where(ResourceCount.account_id == alice).values(count=999))
    _set_limit(admin, 0, 3)
    assert _deploy(user_caller, cloud)[0] == 535  # the tampered count blocks
    counts = admin.ok("updateResourceCount", domainid=_root_domain(admin), account="alice",
                      resourcetype=0)["resourcecount"]
    assert [(c["resourcetypename"], c["resourcecount"]) for c in counts] == [("user_vm", 1)]
    assert _deploy(user_caller, cloud)[0] == 535  # cpu and memory are still tampered with
    counts = admin.ok("updateResourceCount", domainid=_root_domain(admin), account="alice")["resourcecount"]
    assert {c["resourcetypename"]: c["resourcecount"] for c in counts} == {
        "user_vm": 1, "public_ip": 0, "volume": 1, "snapshot": 0, "template": 0, "project": 0, "network": 0,
        "vpc": 0, "cpu": 1, "memory": 512, "primary_storage": 1 << 30, "secondary_storage": 0}
    assert _deploy(user_caller, cloud)[0] == 200
    domain = admin.ok("updateResourceCount", domainid=_root_domain(admin))["resourcecount"]
    assert {c["resourcetypename"]: c["resourcecount"] for c in domain}["user_vm"] == 2


def test_accounts_show_their_limits_totals_and_what_is_left(admin: Caller, user_caller: Caller,
                                                            cloud: dict[str, Any]) -> None:  # noqa: F811
    _set_limit(admin, 0, 3)
    user_caller.wait(_deploy(user_caller, cloud)[1]["jobid"])
    me = user_caller.ok("listAccounts")["account"][0]
    assert (me["vmlimit"], me["vmtotal"], me["vmavailable"]) == ("3", 1, "2")
    assert (me["volumelimit"], me["volumetotal"], me["volumeavailable"]) == ("20", 1, "19")
    assert (me["cpulimit"], me["cputotal"], me["memorytotal"]) == ("40", 1, 512)
    assert (me["primarystoragelimit"], me["primarystoragetotal"], me["primarystorageavailable"]) == ("200", 1, "199")
    boss = admin.ok("listAccounts", name="admin")["account"][0]
    assert (boss["vmlimit"], boss["vmavailable"], boss["vmtotal"]) == ("Unlimited", "Unlimited", 0)


@pytest.mark.parametrize("setting", ["max.account.user.vms=1", "max.account.volumes=1"])
def test_default_limits_come_from_settings(setting: str) -> None:
    from hvcloud.server.config import parse_settings

    name, value = setting.split("=")
    assert parse_settings({name: value}) == {"limit_defaults": ((name, 1),)}
    for bad in ("-2", "x", "1.5", "9" * 20):
        with pytest.raises(ValueError):
            parse_settings({name: bad})


def test_stored_counts_match_the_real_rows_after_a_lifecycle(state: ServerState, admin: Caller,
                                                             user_caller: Caller,
                                                             cloud: dict[str, Any]) -> None:  # noqa: F811
    from hvcloud.server import resource_types as R
    from hvcloud.server.db.models import Domain
    from hvcloud.server.orchestration import resource_limits as limits

    custom = _custom_disk(admin)
    vms = [user_caller.wait(_deploy(user_caller, cloud)[1]["jobid"])["jobresult"]["virtualmachine"]
           for _ in range(3)]
    admin.wait(_deploy(admin, cloud)[1]["jobid"])
    volumes = [user_caller.job("createVolume", diskofferingid=custom, size=3, zoneid=cloud["zoneid"])
               ["jobresult"]["volume"] for _ in range(3)]
    assert user_caller.job("resizeVolume", id=volumes[0]["id"], size=7)["jobstatus"] == 1
    assert user_caller.ok("deleteVolume", id=volumes[1]["id"])["success"] == "true"
    assert user_caller.job("destroyVirtualMachine", id=vms[0]["id"], expunge="true")["jobstatus"] == 1
    medium = admin.ok("listServiceOfferings", name="Medium Instance")["serviceoffering"][0]["id"]
    assert user_caller.job("scaleVirtualMachine", id=vms[1]["id"], serviceofferingid=medium)["jobstatus"] == 1
    with state.sessions() as db:
        alice = db.scalar(select(Account).where(Account.name == "alice"))
        root = db.scalar(select(Domain).where(Domain.path == "ROOT"))
        assert alice is not None and root is not None
        stored = limits.current(db, account=alice)
        real = {t: limits.recount_account(db, alice.id, t) for t in R.NAMES}
        assert stored == real
        assert (real[R.USER_VM], real[R.VOLUME], real[R.PRIMARY_STORAGE]) == (2, 4, 2 * (1 << 30) + 10 * (1 << 30))
        assert limits.current(db, domain=root) == {t: limits.recount_domain(db, root, t) for t in R.NAMES}
