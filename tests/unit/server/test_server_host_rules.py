"""Pure parts of host management: guids, host URLs, settings, state rules, power-report bookkeeping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from hvcloud.server.config import ServerConfig, parse_settings, split_setting
from hvcloud.server.db.models import Host, VmPowerReport, utcnow
from hvcloud.server.orchestration.agents import (
    HOST_ALERT,
    HOST_DISCONNECTED,
    HOST_DOWN,
    HOST_UP,
    AgentAuthFailed,
    AgentCertificateChanged,
    AgentProtocolError,
    AgentUnavailable,
    CommandFailed,
    wire_id,
)
from hvcloud.server.orchestration.discovery import (
    HostUrlError,
    cluster_guid,
    host_guid,
    parse_host_url,
    resolve,
)
from hvcloud.server.orchestration.host_status import Timings, status_after_failure
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone


def test_host_guid_is_javas_name_uuid_from_bytes() -> None:
    # UUID.nameUUIDFromBytes: MD5 with the version nibble set to 3 and the IETF variant.
    # md5("") = d41d8cd98f00b204e9800998ecf8427e, md5("127.0.0.1") = f528764d624db129b32c21fbca0cb8d6
    assert cluster_guid("") == "d41d8cd9-8f00-3204-a980-0998ecf8427e"
    assert host_guid("127.0.0.1") == "f528764d-624d-3129-b32c-21fbca0cb8d6-HypervResource"


def test_wire_id_is_stable_positive_and_distinct() -> None:
    a = "0f9c9a52-7f1e-4c1a-9a55-1f3c2b1d0e01"
    assert wire_id(a) == wire_id(a.upper()) and 0 < wire_id(a) < 2**63
    assert wire_id(a) != wire_id("ff9c9a52-7f1e-4c1a-9a55-1f3c2b1d0e01")
    with pytest.raises(ValueError):
        wire_id("not-a-uuid")


@pytest.mark.parametrize(("url", "override", "expected"), [
    ("http://10.0.0.5", None, ("10.0.0.5", 8250)),
    ("http://10.0.0.5/", None, ("10.0.0.5", 8250)),
    ("HTTP://host-a.example:9000", None, ("host-a.example", 9000)),
    ("http://[::1]:8443", None, ("::1", 8443)),
    ("http://10.0.0.5:9000", "8251", ("10.0.0.5", 8251)),
])
def test_host_urls(url: str, override: str | None, expected: tuple[str, int]) -> None:
    assert parse_host_url(url, override) == expected


@pytest.mark.parametrize(("url", "override"), [
    ("https://10.0.0.5", None), ("10.0.0.5", None), ("http://", None), ("http://u:p@10.0.0.5", None),
    ("http://10.0.0.5/c0/h0", None), ("http://10.0.0.5?x=1", None), ("http://10.0.0.5:99999", None),
    ("http://10.0.0.5:0", None), ("http://10.0.0.5", "0"), ("http://10.0.0.5", "-1"), ("http://10.0.0.5", "80a"),
    ("http://10.0.0.5\n", None), ("http://" + "a" * 3000, None), ("nfs://10.0.0.5/x", None),
])
def test_bad_host_urls(url: str, override: str | None) -> None:
    with pytest.raises(HostUrlError):
        parse_host_url(url, override)


def test_resolve_keeps_ips_and_refuses_unknown_names() -> None:
    assert resolve("127.0.0.1", 8250).base_url == "https://127.0.0.1:8250"
    assert resolve("::1", 8250).base_url == "https://[::1]:8250"
    assert resolve("localhost", 8250).ip in ("127.0.0.1", "::1")
    with pytest.raises(HostUrlError):
        resolve("no-such-host.invalid", 8250)


def test_settings() -> None:
    fields = parse_settings({"ping.interval": "0.5", "ping.timeout": "4", "host.ping.retry.count": "2"})
    assert fields == {"ping_interval_seconds": 0.5, "ping_timeout_multiplier": 4.0, "ping_retry_count": 2}
    assert split_setting(" ping.interval = 1 ") == ("ping.interval", "1")
    for bad in ({"ping.interval": "0"}, {"ping.interval": "nan"}, {"ping.interval": "inf"},
                {"ping.interval": "x"}, {"no.such": "1"}, {"host.ping.retry.count": "1.5"},
                {"ping.timeout": "-3"}):
        with pytest.raises(ValueError):
            parse_settings(bad)
    with pytest.raises(ValueError):
        split_setting("ping.interval")
    cfg = ServerConfig.build(Path("/tmp/x"), "sqlite://", settings={"ping.interval": "2"})
    assert cfg.host_down_after_seconds == 5.0 and cfg.power_report_grace_seconds == 4.0


def test_state_rules() -> None:
    t = Timings(down_after_seconds=10, retry_count=1)
    gone = AgentUnavailable("refused")
    assert status_after_failure(HOST_UP, gone, 1, 1, t) == HOST_UP  # within the retry count
    assert status_after_failure(HOST_UP, gone, 2, 1, t) == HOST_DISCONNECTED
    assert status_after_failure(HOST_DISCONNECTED, gone, 5, 9.9, t) == HOST_DISCONNECTED
    assert status_after_failure(HOST_DISCONNECTED, gone, 6, 10, t) == HOST_DOWN
    assert status_after_failure(HOST_DOWN, gone, 7, 3, t) == HOST_DOWN
    assert status_after_failure(HOST_ALERT, gone, 1, 3, t) == HOST_DISCONNECTED
    for answered in (AgentAuthFailed("401"), AgentCertificateChanged("x"), AgentProtocolError("x"),
                     CommandFailed("setup")):
        assert status_after_failure(HOST_UP, answered, 1, 0, t) == HOST_ALERT
        assert status_after_failure(HOST_DOWN, answered, 9, 100, t) == HOST_ALERT


def test_power_report_bookkeeping(admin: Caller, state: ServerState) -> None:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        host = Host(name="h", zone_id=ids["zoneid"], pod_id=ids["podid"], cluster_id=ids["clusterid"],
                    hypervisor="Simulator", url="http://10.9.9.9")
        db.add(host)
        db.flush()
        host_id = host.id
    t0 = utcnow()
    with state.sessions.begin() as db:
        res = power_sync.apply_report(db, host_id, {"i-1-VM": "PowerOn", "i-2-VM": "PowerOff", "bad\x00": "PowerOn",
                                                    "i-3-VM": "Exploded"}, t0, grace_seconds=10)
        assert {(c.instance_name, c.old, c.new) for c in res.changes} == {
            ("i-1-VM", None, "PowerOn"), ("i-2-VM", None, "PowerOff"), ("i-3-VM", None, "PowerUnknown")}
        assert not res.pending_missing
    with state.sessions.begin() as db:
        res = power_sync.apply_report(db, host_id, {"i-1-VM": "PowerOff", "i-3-VM": "PowerUnknown"},
                                      t0 + timedelta(seconds=1), grace_seconds=10)
        assert [(c.instance_name, c.old, c.new) for c in res.changes] == [("i-1-VM", "PowerOn", "PowerOff")]
        assert res.pending_missing  # i-2-VM dropped out, still inside the grace period
        assert power_sync.power_state_of(db, "i-2-VM") == (host_id, "PowerOff")
    with state.sessions.begin() as db:
        res = power_sync.apply_report(db, host_id, {"i-1-VM": "PowerOff", "i-3-VM": "PowerUnknown"},
                                      t0 + timedelta(seconds=12), grace_seconds=10)
        assert [(c.instance_name, c.new) for c in res.changes] == [("i-2-VM", "PowerReportMissing")]
        assert not res.pending_missing
        row = db.query(VmPowerReport).filter_by(instance_name="i-2-VM").one()
        assert row.missing_since is not None
    with state.sessions.begin() as db:
        res = power_sync.apply_report(db, host_id, {"i-2-VM": "PowerOn"}, t0 + timedelta(seconds=13), 10)
        assert ("i-2-VM", "PowerReportMissing", "PowerOn") in {(c.instance_name, c.old, c.new) for c in res.changes}
        assert power_sync.power_state_of(db, "i-2-VM") == (host_id, "PowerOn")
        assert power_sync.power_state_of(db, "nope") is None
    with state.sessions.begin() as db, pytest.raises(ValueError):
        power_sync.apply_report(db, host_id, {f"i-{n}": "PowerOn" for n in range(power_sync.MAX_ENTRIES + 1)},
                                t0, 10)
