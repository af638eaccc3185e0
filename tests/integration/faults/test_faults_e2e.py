"""Fault scenarios end to end with real processes (issue 7, "Faults"): the agent SIGKILLed during
20 concurrent deploys, the server SIGKILLed during 100, a hung agent and a host whose agent process
dies (and both coming back), one command hung on a host that stays Up. Each prints its figures;
assertions are on correctness, the only time bounds are generous requirements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server.fault_scenarios import (
    agent_killed_mid_deploy,
    cloud_stack,
    hung_and_dropped_hosts,
    hung_command_on_up_host,
    server_killed_mid_deploy,
)
from tests.support.postgres import fresh_pg_database
from tests.support.vm_stack import Cloud


@pytest.fixture
def pg_cloud(tmp_path: Path) -> Iterator[Cloud]:
    with fresh_pg_database() as url, cloud_stack(tmp_path, url, hosts=3) as cloud:
        yield cloud


@pytest.mark.postgres
def test_agent_killed_during_20_deploys(pg_cloud: Cloud) -> None:
    result = agent_killed_mid_deploy(pg_cloud, deploys=20)
    print(result.figures(), result.notes)
    assert result.succeeded + result.rolled_back == 20
    assert all(reason for reason in result.notes["failure reasons"])
    assert result.violations == []


@pytest.mark.postgres
@pytest.mark.slow
def test_server_killed_during_100_deploys(pg_cloud: Cloud) -> None:
    result = server_killed_mid_deploy(pg_cloud, deploys=100)
    print(result.figures(), result.notes)
    assert result.violations == []
    assert result.succeeded + result.rolled_back == 100


@pytest.mark.postgres
def test_hung_agent_and_dropped_host_do_not_block_the_cloud(pg_cloud: Cloud, tmp_path: Path) -> None:
    result = hung_and_dropped_hosts(pg_cloud, tmp_path / "lone-agent" / "data")
    print(result.figures(), result.stop_on_down_host)
    hung = next(iter(result.states_seen))
    assert result.stop_in_flight.get("outcome") == "failed", result.stop_in_flight
    assert "went Down before it answered" in result.stop_in_flight["error"], result.stop_in_flight
    assert result.stop_in_flight["seconds"] < result.down_seconds[hung] + 15, \
        "a command outstanding on a host that goes Down fails then, not after its own wait"
    for host_id, seen in result.states_seen.items():
        assert "Disconnected" in seen and seen[-1] == "Down", (host_id, seen)
        assert seen.index("Disconnected") < seen.index("Down"), seen
    assert result.api_errors == [] and result.api_calls_ok > 0
    assert result.deploy_errors == [] and result.deploys_ok > 0
    assert result.slowest_api_seconds < 10, "an API call waited on a lost host"
    assert result.stop_on_down_host["seconds"] < 60, "a command to a Down host must fail or finish promptly"
    lost = set(result.vm_states)
    assert set(result.vm_states.values()) == {"Unknown"}, result.vm_states
    assert set(result.power_states.values()) == {"PowerUnknown"}, result.power_states
    assert lost <= result.listed_unknown and not lost & result.listed_running
    # back again: each VM shows what its host reports, not what was last known before the loss
    expected = dict.fromkeys(lost, "Running") | {result.powered_off_away: "Stopped"}
    assert result.vm_states_back == expected, result.vm_states_back
    assert result.power_states_back == {name: "PowerOn" for name in lost if expected[name] == "Running"} \
        | {result.powered_off_away: result.power_states_back[result.powered_off_away]}
    assert result.power_states_back[result.powered_off_away] in ("PowerOff", "PowerReportMissing")


WAIT_SECONDS = 4.0


@pytest.fixture
def short_wait_cloud(tmp_path: Path) -> Iterator[Cloud]:
    with cloud_stack(tmp_path, None, hosts=3, settings=(f"wait={WAIT_SECONDS:g}",)) as cloud:
        yield cloud


def test_a_command_hung_on_an_up_host_times_out_cleanly(short_wait_cloud: Cloud) -> None:
    result = hung_command_on_up_host(short_wait_cloud, WAIT_SECONDS, hang_seconds=WAIT_SECONDS + 8)
    print(result.figures(), result.error)
    assert result.host_states == ["Up"], "the host answers pings: it is not Disconnected for one hung command"
    assert f"StartCommand: no answer within {WAIT_SECONDS:g} s" in result.error, result.error
    assert result.vm_state == "Error" and result.vm_reason
    assert result.capacity_after == result.capacity_before and result.recount_error is None
    assert result.api_errors == [] and result.deploy_errors == [] and result.deploys_ok > 0
    assert result.slowest_api_seconds < WAIT_SECONDS, "an API call waited on the hung command"
    assert result.ran_late and result.leftover_stopped_after is not None, \
        "the VM the agent started after the server gave up is stopped by the cleanup"
