"""The server side of a rule change on a router that holds many: one port forward (with its firewall
rule) added to an address that has ``--rules`` forwards and ``--rules`` firewall rules — the
request's checks and rows (conflict detection, the rule rows) and the job (the change's commands
built, sent to an in-memory router host, the rows moved to Active) — and a full replay of the
network's public side (what a router start, reboot or ``restartNetwork`` sends). Hosts are
``tests.support.router_world``'s in-memory router hosts: the figures are the server's database
work and command building, not the router's ruleset load (measured on the router side).

    .venv/bin/python -m bench.public_rules --rules 1000 --changes 200 [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session
from tests.support.router_world import World, build_world

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Account, FirewallRule, Network, PortForwardingRule, UserIpAddress
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import routing, rule_jobs
from hvcloud.server.orchestration.networks import rules as RULES
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _setup(world: World, rules: int) -> tuple[str, str, str]:
    world.public_range("198.51.100.10", "198.51.100.250")
    net = world.network(offering=world.full_offering())
    vm = world.vm(net)
    asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.RUNNING)

    def fill(db: Session) -> str:
        network = db.get(Network, net)
        assert network is not None
        account = db.get(Account, network.account_id)
        assert account is not None
        ip = IP.allocate(db, zone_id=network.zone_id, account=account, network=network)
        for i in range(rules):
            for purpose in (RR.PORT_FORWARDING, RR.FIREWALL):
                rule = FirewallRule(ip_address_id=ip.id, network_id=net, account_id=ip.account_id,
                                    domain_id=ip.domain_id, purpose=purpose, traffic_type=RR.INGRESS, protocol="tcp",
                                    start_port=10000 + i, end_port=10000 + i, state=RR.ACTIVE)
                db.add(rule)
                db.flush()
                if purpose == RR.PORT_FORWARDING:
                    db.add(PortForwardingRule(id=rule.id, vm_id=vm, dest_ip="10.1.1.10", dest_port_start=80,
                                              dest_port_end=80))
        return ip.id
    return net, vm, str(world.tx(fill))


def _request(db: Session, ip_id: str, net: str, vm: str, port: int) -> list[str]:
    """What createPortForwardingRule's request does after parsing: conflicts checked, rows written."""
    ip = db.get(UserIpAddress, ip_id)
    assert ip is not None
    spec = RULES.RuleSpec("tcp", port, port)
    RULES.check_conflicts(db, ip=ip, network_id=net, purpose=RR.PORT_FORWARDING, traffic=RR.INGRESS, spec=spec)
    pf = RULES.add_rule(db, ip=ip, network_id=net, account_id=ip.account_id, domain_id=ip.domain_id,
                        purpose=RR.PORT_FORWARDING, traffic=RR.INGRESS, spec=spec)
    db.add(PortForwardingRule(id=pf.id, vm_id=vm, dest_ip="10.1.1.10", dest_port_start=80, dest_port_end=80))
    RULES.check_conflicts(db, ip=ip, network_id=net, purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=spec)
    fw = RULES.add_rule(db, ip=ip, network_id=net, account_id=ip.account_id, domain_id=ip.domain_id,
                        purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=spec, related_id=pf.id)
    return [fw.id, pf.id]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig.build(Path(tmp) / "data", db_url=args.db_url)
        state = ServerState.open(replace(config, manage_agents=False))
        try:
            world = build_world(state)
            net, vm, ip_id = _setup(world, args.rules)
            steps = world.steps()
            requests: list[float] = []
            jobs: list[float] = []
            for i in range(args.changes):
                t0 = time.perf_counter()
                ids = world.tx(_request, ip_id, net, vm, 30000 + i)
                t1 = time.perf_counter()
                asyncio.run(rule_jobs.apply_change(steps, net, RR.Change(rule_ids=ids)))
                jobs.append(time.perf_counter() - t1)
                requests.append(t1 - t0)
            ref = world.tx(rule_jobs.running_ref, net)
            t0 = time.perf_counter()
            asyncio.run(rule_jobs.replay(steps, ref))
            replay = time.perf_counter() - t0
            total = 2 * args.rules + 2 * args.changes
            print(f"rules on the address: {2 * args.rules} ({args.rules} forwards + {args.rules} firewall rules)")
            print(f"one forward + its firewall rule, request rows: p50 {_pct(requests, 0.5):.1f} ms, "
                  f"p99 {_pct(requests, 0.99):.1f} ms")
            print(f"one forward + its firewall rule, job (build, send, Active): p50 {_pct(jobs, 0.5):.1f} ms, "
                  f"p99 {_pct(jobs, 0.99):.1f} ms")
            print(f"full replay of {total} rules: {replay * 1000:.0f} ms")
        finally:
            state.close()


if __name__ == "__main__":
    main()
