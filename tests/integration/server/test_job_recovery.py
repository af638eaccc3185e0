"""Crash safety of the job engine with real server processes: SIGKILL mid-job and restart (resume
or roll back), and two servers on one PostgreSQL where the survivor takes over the dead one's jobs."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from hvcloud.server.jobs.engine import ROLLED_BACK_TEXT
from tests.support.postgres import fresh_pg_database
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

PLUGIN = ["--plugin", "tests.integration.server.job_test_plugin"]


@pytest.fixture
def fresh_pg(pg_database: str) -> Iterator[str]:
    """A database of its own for each test (the session database proves PostgreSQL is there)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_pg"))
    return None


def client(server: ServerProcess) -> CloudStack:
    return CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                      timeout=30)




def wait_job(cs: CloudStack, jobid: str, timeout: float = 60) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def done() -> bool:
        result.update(cs.queryAsyncJobResult(jobid=jobid))
        return bool(result["jobstatus"] != 0)

    wait_for(f"job {jobid}", done, timeout)
    return result


def submit(cs: CloudStack, mode: str, markers: Path, seconds: int = 120) -> str:
    return str(cs.testSleepJob(mode=mode, seconds=seconds, markerdir=str(markers),
                               objectid=str(uuid.uuid4()))["jobid"])


def test_sigkill_mid_job_then_restart_resumes_or_rolls_back(tmp_path: Path, db_url: str | None) -> None:
    data, markers = tmp_path / "data", tmp_path / "markers"
    data.mkdir()
    markers.mkdir()
    first = ServerProcess(data, db_url, PLUGIN)
    try:
        cs = client(first)
        resume, rollback = submit(cs, "resume", markers), submit(cs, "rollback", markers)
        wait_for("both jobs to start",
                 lambda: all((markers / f"{j}.started.1").exists() for j in (resume, rollback)), 30)
        wait_for("the resumable job to report its progress",
                 lambda: cs.queryAsyncJobResult(jobid=resume)["jobprocstatus"] == 10, 30)
        running = cs.queryAsyncJobResult(jobid=resume)
        assert running["jobstatus"] == 0 and running["jobprocstatus"] == 10
        first.kill()
    finally:
        first.stop()
    second = ServerProcess(data, db_url, PLUGIN)
    try:
        cs = client(second)
        resumed = wait_job(cs, resume)
        assert resumed["jobstatus"] == 1 and resumed["jobresult"] == {"success": True, "displaytext": "attempt 2"}
        assert (markers / f"{resume}.started.2").exists() and (markers / f"{resume}.done").exists()
        rolled = wait_job(cs, rollback)
        assert rolled["jobstatus"] == 2 and rolled["jobresultcode"] == 530
        assert rolled["jobresult"]["errortext"] == ROLLED_BACK_TEXT
        assert (markers / f"{rollback}.rolledback").exists()
        assert not (markers / f"{rollback}.started.2").exists() and not (markers / f"{rollback}.done").exists()
        pending = cs.listAsyncJobs(listall=True).get("asyncjobs", [])
        assert all(j["jobstatus"] != 0 for j in pending)
    finally:
        second.stop()


def _owner(db_url: str, job_id: str) -> str | None:
    from sqlalchemy import text

    from hvcloud.server.db.engine import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT owner_server_id FROM async_job WHERE id = :id"),
                                {"id": job_id}).scalar_one_or_none()
    finally:
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database for two servers: PostgreSQL, or one SQLite file that server processes on the same
    host share (their writers queue on its lock file)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_pg"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_two_servers_share_a_database_and_survive_a_death(tmp_path: Path, shared_db: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        if servers:  # servers on one database share the secret key that encrypts its secrets
            shutil.copy2(servers[0].data_dir / "secret.key", tmp_path / name / "secret.key")
        servers.append(ServerProcess(tmp_path / name, shared_db, [*PLUGIN, "--lease-seconds", "2"]))
    try:
        clients = {s.server_id: client(s) for s in servers}
        jobs = [submit(clients[servers[i % 2].server_id], "resume", markers, seconds=15) for i in range(6)]
        wait_for("all jobs to start", lambda: all((markers / f"{j}.started.1").exists() for j in jobs), 30)
        owners = {j: _owner(shared_db, j) for j in jobs}
        assert set(owners.values()) <= {s.server_id for s in servers}
        victim = next(s for s in servers if s.server_id == owners[jobs[0]])
        survivor = next(s for s in servers if s is not victim)
        victim.kill()
        cs = clients[survivor.server_id]
        for job in jobs:
            result = wait_job(cs, job, timeout=60)
            assert result["jobstatus"] == 1
            expected = "attempt 2" if owners[job] == victim.server_id else "attempt 1"
            if owners[job] == victim.server_id:
                assert result["jobresult"]["displaytext"] == expected
                assert _owner(shared_db, job) == survivor.server_id
        assert sum(1 for o in owners.values() if o == victim.server_id) >= 1
    finally:
        for s in servers:
            s.stop()
