"""The resource manager (orchestration.resources) without the API: its rules and its job."""

from __future__ import annotations

import pytest

from hvcloud.server.api import errors
from hvcloud.server.db.models import Pod, Zone
from hvcloud.server.jobs.handlers import HANDLERS
from hvcloud.server.orchestration.resources import storage_pools, zones
from hvcloud.server.state import ServerState


def _zone(name: str = "z1") -> Zone:
    return Zone(name=name, network_type="Advanced", dns1="8.8.8.8", internal_dns1="10.0.0.1",
                allocation_state="Enabled")


def test_a_zone_name_is_taken_once_and_a_zone_with_pods_is_not_deleted(state: ServerState) -> None:
    with state.sessions.begin() as db:
        zone = zones.create_zone(db, _zone())
        with pytest.raises(errors.ApiError) as taken:
            zones.create_zone(db, _zone())
        assert taken.value.code == errors.PARAM_ERROR
        pod = zones.create_pod(db, zone, "p1", zones.PodRange(None, None, None, None), "Enabled")
        with pytest.raises(errors.ApiError) as busy:
            zones.delete_zone(db, zone)
        assert busy.value.code == errors.RESOURCE_IN_USE and "pods" in busy.value.text
        zones.delete_pod(db, pod)
        zones.delete_zone(db, zone)
    with state.sessions() as db:
        assert db.query(Zone).count() == 0 and db.query(Pod).count() == 0


def test_a_zone_edit_merges_details_and_keeps_what_was_not_given(state: ServerState) -> None:
    with state.sessions.begin() as db:
        zone = zones.create_zone(db, _zone())
        zones.update_zone(db, zone, zones.ZoneEdit(details=(("a", "1"),)))
        zones.update_zone(db, zone, zones.ZoneEdit(name="z2", fields=(("dns2", "8.8.4.4"),), details=(("b", "2"),)))
        assert (zone.name, zone.dns1, zone.dns2, zone.allocation_state) == ("z2", "8.8.8.8", "8.8.4.4", "Enabled")
        assert zone.details_json == '{"a": "1", "b": "2"}'


def test_the_pool_maintenance_job_is_registered_by_orchestration() -> None:
    """The job engine finds the job through the resource manager's module, not the API commands."""
    assert HANDLERS[storage_pools.JOB_MAINTENANCE].run is storage_pools.run_maintenance
    assert HANDLERS[storage_pools.JOB_MAINTENANCE].resumable
