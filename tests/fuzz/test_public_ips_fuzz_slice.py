"""The API fuzzer aimed at the public address, firewall, port forwarding and load balancer commands
(in-process): every answer is an envelope without a traceback, and every rejection writes nothing."""

from __future__ import annotations

import warnings

from hvcloud.server.api.commands import firewall, load_balancers, public_ips
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
PUBLIC_COMMANDS = sorted(c.name for c in api_fuzz.REGISTRY.all()
                         if c.handler.__module__ in (public_ips.__name__, firewall.__name__, load_balancers.__name__))


def test_public_ip_and_rule_commands_under_fuzz(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert len(PUBLIC_COMMANDS) == 23
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    admin = keys["admin"]
    zone = api_fuzz.call(client, URL, admin, "listZones")["zone"][0]["id"]
    pn = api_fuzz.call(client, URL, admin, "listPhysicalNetworks", zoneid=zone)["physicalnetwork"][0]["id"]
    api_fuzz.call(client, URL, admin, "addTrafficType", physicalnetworkid=pn, traffictype="Public",
                  kvmnetworklabel="fzpub")
    api_fuzz.call(client, URL, admin, "createVlanIpRange", zoneid=zone, physicalnetworkid=pn, vlan="untagged",
                  gateway="198.51.100.1", netmask="255.255.255.0", startip="198.51.100.10",
                  endip="198.51.100.30", forvirtualnetwork="true")
    bob_net = api_fuzz.call(client, URL, admin, "listNetworks", listall="true", name="fz-bob-net")["network"][0]["id"]
    ip = api_fuzz.call(client, URL, admin, "associateIpAddress", networkid=bob_net)["id"]
    api_fuzz.settle(state.engine)
    rule = api_fuzz.call(client, URL, admin, "createFirewallRule", ipaddressid=ip, protocol="tcp", startport="22")
    lb = api_fuzz.call(client, URL, admin, "createLoadBalancerRule", publicipid=ip, name="fz-lb",
                       algorithm="roundrobin", publicport="80", privateport="80")
    api_fuzz.settle(state.engine)
    fx.ids += [ip, rule["id"], lb["id"], bob_net]
    tally = api_fuzz.run(state.engine, client, URL, keys, api_fuzz.cases(20261216, 300, fx, only=PUBLIC_COMMANDS))
    assert tally.failures == []
    assert tally.total == 300
    assert tally.counts.get("ok", 0) > 0 and tally.counts.get("error-431", 0) > 0
