"""Network offerings: CloudStack's defaults seeded once, listing with CloudStack's filters, and the
create/update/delete rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.db.models import NetworkOffering
from hvcloud.server.db.seed import DEFAULT_NETWORK_OFFERINGS, seed
from hvcloud.server.state import ServerState
from tests.support.network_setup import add_physical_network, job_result, offering_id
from tests.support.server_api import Caller, build_zone
from tests.unit.server.network_checks import refused

DEFAULTS = {"DefaultIsolatedNetworkOfferingWithSourceNatService", "DefaultIsolatedNetworkOffering",
            "DefaultSharedNetworkOffering", "DefaultSharedNetworkOfferingWithSGService", "DefaultL2NetworkOffering",
            "DefaultL2NetworkOfferingVlan"}


def _services(offering: dict[str, Any]) -> dict[str, list[str]]:
    return {s["name"]: [p["name"] for p in s.get("provider", [])] for s in offering.get("service", [])}


def test_defaults_are_seeded_as_cloudstack_seeds_them(admin: Caller) -> None:
    listed = admin.ok("listNetworkOfferings")
    by_name = {o["name"]: o for o in listed["networkoffering"]}
    assert set(by_name) == DEFAULTS and listed["count"] == len(DEFAULTS)
    assert all(o["state"] == "Enabled" and o["isdefault"] and o["traffictype"] == "Guest" and not o["forvpc"]
               for o in by_name.values())
    snat = by_name["DefaultIsolatedNetworkOfferingWithSourceNatService"]
    assert snat["guestiptype"] == "Isolated" and snat["availability"] == "Required" and not snat["specifyvlan"]
    assert _services(snat) == {s: ["VirtualRouter"] for s in (
        "Dhcp", "Dns", "UserData", "Firewall", "Gateway", "Lb", "SourceNat", "StaticNat", "PortForwarding", "Vpn")}
    source_nat = next(s for s in snat["service"] if s["name"] == "SourceNat")
    assert {"name": "SupportedSourceNatTypes", "value": "peraccount", "canchooseservicecapability": True} in \
        source_nat["capability"]
    plain = by_name["DefaultIsolatedNetworkOffering"]
    assert plain["specifyvlan"] and plain["specifyipranges"] and set(_services(plain)) == {"Dhcp", "Dns", "UserData"}
    sg = by_name["DefaultSharedNetworkOfferingWithSGService"]
    assert _services(sg)["SecurityGroup"] == ["SecurityGroupProvider"] and sg["guestiptype"] == "Shared"
    l2 = by_name["DefaultL2NetworkOffering"]
    assert l2["guestiptype"] == "L2" and l2["service"] == [] and not l2["specifyvlan"]


def test_seeding_again_adds_nothing(state: ServerState, tmp_path: Path) -> None:
    with state.sessions.begin() as db:
        before = db.scalar(select(func.count()).select_from(NetworkOffering))
        first = db.scalars(select(NetworkOffering).where(NetworkOffering.unique_name.is_not(None))).all()
        first[0].name = "renamed by the admin"
    with state.sessions.begin() as db:
        seed(db, state.box, tmp_path)
    with state.sessions.begin() as db:
        seed(db, state.box, tmp_path)
        assert db.scalar(select(func.count()).select_from(NetworkOffering)) == before == len(DEFAULT_NETWORK_OFFERINGS)
        assert db.scalar(select(func.count()).select_from(NetworkOffering).where(
            NetworkOffering.name == "renamed by the admin")) == 1


@pytest.mark.parametrize(("params", "expected"), [
    ({"guestiptype": "isolated"}, {"DefaultIsolatedNetworkOfferingWithSourceNatService",
                                   "DefaultIsolatedNetworkOffering"}),
    ({"guestiptype": "L2", "specifyvlan": "false"}, {"DefaultL2NetworkOffering"}),
    ({"supportedservices": "SourceNat"}, {"DefaultIsolatedNetworkOfferingWithSourceNatService"}),
    ({"supportedservices": "dhcp,SecurityGroup"}, {"DefaultSharedNetworkOfferingWithSGService"}),
    ({"sourcenatsupported": "false", "guestiptype": "Isolated"}, {"DefaultIsolatedNetworkOffering"}),
    ({"availability": "Required"}, {"DefaultIsolatedNetworkOfferingWithSourceNatService"}),
    ({"keyword": "L2 networks VLAN"}, {"DefaultL2NetworkOfferingVlan"}),
    ({"specifyipranges": "true", "guestiptype": "Shared"}, {"DefaultSharedNetworkOffering",
                                                             "DefaultSharedNetworkOfferingWithSGService"}),
    ({"forvpc": "true"}, set()),
    ({"isdefault": "false"}, set()),
    ({"name": "DefaultL2NetworkOffering"}, {"DefaultL2NetworkOffering"}),
    ({"state": "Disabled"}, set()),
    ({"keyword": "%"}, set()),
])
def test_list_filters(admin: Caller, params: dict[str, str], expected: set[str]) -> None:
    listed = admin.ok("listNetworkOfferings", **params)
    assert {o["name"] for o in listed.get("networkoffering", [])} == expected


@pytest.mark.parametrize(("params", "field"), [
    ({"guestiptype": "Public"}, "guestiptype"),
    ({"supportedservices": "Teleport"}, "supportedservices"),
    ({"supportedservices": "Dhcp", "serviceproviderlist[0].service": "Dhcp",
      "serviceproviderlist[0].provider": "Netscaler"}, "serviceproviderlist"),
    ({"supportedservices": "Dhcp", "serviceproviderlist[0].service": "Dhcp",
      "serviceproviderlist[0].provider": "SecurityGroupProvider"}, "serviceproviderlist"),
    ({"supportedservices": "Dhcp", "serviceproviderlist[0].service": "Dns",
      "serviceproviderlist[0].provider": "VirtualRouter"}, "serviceproviderlist"),
    ({"supportedservices": "Dhcp", "serviceproviderlist[0].service": "Dhcp"}, "serviceproviderlist"),
    ({"supportedservices": "NetworkACL"}, "serviceproviderlist"),
    ({"guestiptype": "L2", "supportedservices": "Dhcp"}, "supportedservices"),
    ({"guestiptype": "Shared", "supportedservices": "Dhcp"}, "specifyvlan"),
    ({"guestiptype": "Shared", "specifyvlan": "true", "supportedservices": "Dhcp"}, "specifyipranges"),
    ({"guestiptype": "Shared", "specifyvlan": "true", "specifyipranges": "true", "supportedservices": "SourceNat"},
     "supportedservices"),
    ({"supportedservices": "SecurityGroup"}, "supportedservices"),
    ({"supportedservices": "SourceNat", "specifyipranges": "true"}, "specifyipranges"),
    ({"supportedservices": "Dhcp", "availability": "Required"}, "availability"),
    ({"availability": "Sometimes"}, "availability"),
    ({"traffictype": "Public"}, "traffictype"),
    ({"forvpc": "true"}, "forvpc"),
    ({"networkrate": "-5"}, "networkrate"),
    ({"supportedservices": "SourceNat", "servicecapabilitylist[0].service": "SourceNat",
      "servicecapabilitylist[0].capabilitytype": "Warp", "servicecapabilitylist[0].capabilityvalue": "9"},
     "servicecapabilitylist"),
    ({"supportedservices": "Dhcp", "servicecapabilitylist[0].service": "Lb",
      "servicecapabilitylist[0].capabilitytype": "ElasticLb", "servicecapabilitylist[0].capabilityvalue": "true"},
     "servicecapabilitylist"),
    ({"serviceofferingid": "00000000-0000-0000-0000-000000000000"}, "serviceofferingid"),
])
def test_create_refuses_bad_input(state: ServerState, admin: Caller, params: dict[str, str], field: str) -> None:
    base = {"name": "bad", "displaytext": "bad", "guestiptype": "Isolated", "traffictype": "Guest", **params}
    refused(state, admin, "createNetworkOffering", field=field, **base)


def test_create_update_delete(state: ServerState, admin: Caller, user_caller: Caller) -> None:
    made = admin.ok("createNetworkOffering", name="Iso-custom", guestiptype="isolated", traffictype="GUEST",
                    supportedservices="Dhcp,Dns,SourceNat,StaticNat,UserData", conservemode="false",
                    egressdefaultpolicy="true", networkrate="200", tags="fast", ispersistent="true",
                    **{"serviceproviderlist[0].service": "Dhcp", "serviceproviderlist[0].provider": "VirtualRouter",
                       "servicecapabilitylist[0].service": "SourceNat",
                       "servicecapabilitylist[0].capabilitytype": "SupportedSourceNatTypes",
                       "servicecapabilitylist[0].capabilityvalue": "perzone"})["networkoffering"]
    assert made["state"] == "Disabled" and not made["isdefault"] and made["displaytext"] == "Iso-custom"
    assert made["conservemode"] is False and made["egressdefaultpolicy"] is True and made["networkrate"] == 200
    assert made["ispersistent"] is True and made["tags"] == "fast"
    assert _services(made) == {s: ["VirtualRouter"] for s in ("Dhcp", "Dns", "SourceNat", "StaticNat", "UserData")}
    assert user_caller.ok("listNetworkOfferings", id=made["id"]) == {}
    status, _ = user_caller.call("createNetworkOffering", name="u", guestiptype="L2", traffictype="Guest")
    assert status in (401, 432)
    enabled = admin.ok("updateNetworkOffering", id=made["id"], state="enabled", name="Iso-2", sortkey=5,
                       displaytext="Isolated, second")["networkoffering"]
    assert enabled["state"] == "Enabled" and enabled["name"] == "Iso-2" and enabled["displaytext"] == "Isolated, second"
    assert user_caller.ok("listNetworkOfferings", id=made["id"])["count"] == 1
    refused(state, admin, "updateNetworkOffering", field="state", id=made["id"], state="Paused")
    refused(state, admin, "updateNetworkOffering", field="maxconnections", id=made["id"], maxconnections=-1)
    l2 = admin.ok("createNetworkOffering", name="l2x", guestiptype="L2", traffictype="Guest", enable="true")
    refused(state, admin, "updateNetworkOffering", field="availability", id=l2["networkoffering"]["id"],
            availability="Required")
    assert l2["networkoffering"]["state"] == "Enabled"
    refused(state, admin, "deleteNetworkOffering", field="default",
            id=offering_id(admin, "DefaultL2NetworkOffering"))
    ids = build_zone(admin)
    pn = add_physical_network(admin, ids["zoneid"])
    job_result(admin, "updatePhysicalNetwork", id=pn["id"], tags="fast")  # the offering's tag picks it
    network = admin.ok("createNetwork", name="uses", zoneid=ids["zoneid"], networkofferingid=made["id"])["network"]
    refused(state, admin, "deleteNetworkOffering", field="used", id=made["id"])
    admin.job("deleteNetwork", id=network["id"])
    assert admin.ok("deleteNetworkOffering", id=made["id"]) == {"success": "true"}
    refused(state, admin, "deleteNetworkOffering", field="id", id=made["id"])
    assert admin.ok("listNetworkOfferings", id=made["id"]) == {}
