"""The one place that turns a WMI method's ``(Job, ReturnValue)`` into success or a typed error.

Every mutating Hyper-V method answers 0 (done), 4096 (a ``Msvm_ConcreteJob`` was started) or an
error code. :func:`wait_for_job` polls the job with a growing interval until it ends, bounded by a
deadline and by an optional cancellation event; on timeout or cancellation it asks the job to
terminate (when the job says it can be cancelled) before raising.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from hvcloud.hypervisor.hyperv.connection import WmiConnection, WmiObject
from hvcloud.hypervisor.hyperv.errors import (
    HyperVJobCancelled,
    HyperVJobFailed,
    HyperVJobTimeout,
    WmiError,
    error_for_code,
)

JOB_STARTED = 4096

JOB_NEW, JOB_STARTING, JOB_RUNNING, JOB_SUSPENDED, JOB_SHUTTING_DOWN = 2, 3, 4, 5, 6
JOB_COMPLETED, JOB_TERMINATED, JOB_KILLED, JOB_EXCEPTION, JOB_SERVICE = 7, 8, 9, 10, 11
JOB_COMPLETED_WITH_WARNINGS = 32768
JOB_FINISHED = frozenset({JOB_COMPLETED, JOB_TERMINATED, JOB_KILLED, JOB_EXCEPTION,
                          JOB_COMPLETED_WITH_WARNINGS})
JOB_SUCCEEDED = frozenset({JOB_COMPLETED, JOB_COMPLETED_WITH_WARNINGS})

#: CIM_ConcreteJob.RequestStateChange value that asks a job to stop
JOB_REQUEST_TERMINATE = 4


@dataclass
class Clock:
    """Time source and sleep, replaceable in tests so that nothing waits on the wall clock."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class JobPolicy:
    timeout: float = 600.0
    first_poll: float = 0.05
    max_poll: float = 1.0
    cancel: threading.Event | None = None
    clock: Clock = field(default_factory=Clock)


def check(conn: WmiConnection, out: Mapping[str, Any], operation: str, policy: JobPolicy,
          *, success: Collection[int] = (0,)) -> WmiObject | None:
    """Raise unless ``out`` means success; wait for the job when one was started.

    Returns the finished job (for its ``Msvm_AffectedJobElement`` associations), or None when the
    method completed synchronously.
    """
    code = out.get("ReturnValue")
    if not isinstance(code, int):
        raise WmiError(f"{operation}: no ReturnValue in the answer")
    if code == JOB_STARTED:
        job_path = out.get("Job")
        if not isinstance(job_path, str) or not job_path:
            raise WmiError(f"{operation}: job started but no Job reference returned")
        return wait_for_job(conn, job_path, operation, policy)
    if code in success:
        return None
    raise error_for_code(operation, code)


def wait_for_job(conn: WmiConnection, job_path: str, operation: str, policy: JobPolicy
                 ) -> WmiObject:
    clock = policy.clock
    deadline = clock.now() + policy.timeout
    interval = policy.first_poll
    while True:
        job = conn.get(job_path)
        state = int(job["JobState"])
        if state in JOB_FINISHED:
            _raise_if_failed(job, state, operation)
            return job
        if policy.cancel is not None and policy.cancel.is_set():
            _terminate(conn, job)
            raise HyperVJobCancelled(operation, 0, "cancelled by the agent")
        remaining = deadline - clock.now()
        if remaining <= 0:
            _terminate(conn, job)
            raise HyperVJobTimeout(
                operation, 32772,
                f"job still {_state_name(state)} at {job['PercentComplete']}% "
                f"after {policy.timeout:g} s")
        clock.sleep(min(interval, remaining))
        interval = min(interval * 2, policy.max_poll)


def _raise_if_failed(job: WmiObject, state: int, operation: str) -> None:
    error_code = int(job["ErrorCode"] or 0)
    if state in JOB_SUCCEEDED and error_code == 0:
        return
    text = job["ErrorDescription"] or job["ErrorSummaryDescription"] or _state_name(state)
    raise HyperVJobFailed(operation, error_code, str(text), state)


def _terminate(conn: WmiConnection, job: WmiObject) -> None:
    if not job["Cancellable"]:
        return
    with contextlib.suppress(WmiError):
        conn.invoke(job, "RequestStateChange", RequestedState=JOB_REQUEST_TERMINATE)


_STATE_NAMES = {
    JOB_NEW: "New", JOB_STARTING: "Starting", JOB_RUNNING: "Running", JOB_SUSPENDED: "Suspended",
    JOB_SHUTTING_DOWN: "Shutting Down", JOB_COMPLETED: "Completed",
    JOB_TERMINATED: "Terminated", JOB_KILLED: "Killed", JOB_EXCEPTION: "Exception",
    JOB_SERVICE: "Service", JOB_COMPLETED_WITH_WARNINGS: "Completed with warnings",
}


def _state_name(state: int) -> str:
    return _STATE_NAMES.get(state, f"state {state}")
