"""Secondary storage is counted once an image's size is known (after its download or upload), and an
image that would pass the owner's limit is refused: its copy is removed and the count is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.image_server import ImageServer
from tests.support.server_api import Caller
from tests.unit.server.test_templates_api import images, pytestmark, state, web, zone_with_store  # noqa: F401  (fixtures by name)


def test_images_past_the_secondary_storage_limit_are_refused(admin: Caller, web: ImageServer,  # noqa: F811
                                                             tmp_path: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    account = admin.ok("createAccount", username="carol", password="pw-123456", firstname="C", lastname="C",
                       accounttype=0)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    user = Caller(admin.http, keys["apikey"], keys["secretkey"])
    admin.ok("updateResourceLimit", resourcetype=11, max=0, account="carol", domainid=account["domainid"])

    def register() -> dict[str, Any]:
        body = user.ok("registerTemplate", name="t", displaytext="t", format="QCOW2", hypervisor="KVM",
                       url=web.url("good.qcow2"), zoneid=zoneid)
        return admin.wait(body["template"][0]["jobid"])

    refused = register()
    assert refused["jobstatus"] == 2
    assert "Maximum number of resources of type 'secondary_storage' for account name=carol" in str(refused)
    assert list((tmp_path / "store").rglob("*.qcow2")) == []
    me = admin.ok("listAccounts", name="carol")["account"][0]
    assert (me["secondarystoragetotal"], me["templatetotal"]) == (0, 1)
    admin.ok("updateResourceLimit", resourcetype=11, max=1, account="carol", domainid=account["domainid"])
    assert register()["jobstatus"] == 1
    counts = admin.ok("updateResourceCount", domainid=account["domainid"], account="carol",
                      resourcetype=11)["resourcecount"]
    assert 0 < counts[0]["resourcecount"] < 1 << 30
    assert admin.ok("listAccounts", name="carol")["account"][0]["templatetotal"] == 2
