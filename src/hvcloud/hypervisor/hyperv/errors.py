"""Typed Hyper-V errors: WMI return codes and job failures, with Hyper-V's own text."""

from __future__ import annotations

from hvcloud.hypervisor.driver import (
    DriverError,
    DriverTimeout,
    HypervisorUnavailable,
    InsufficientCapacity,
    InvalidVmState,
    NotSupported,
)

#: ``Msvm_VirtualSystemManagementService`` return codes, as documented for its methods.
RETURN_CODE_TEXT: dict[int, str] = {
    0: "Completed with No Error",
    4096: "Method Parameters Checked - Job Started",
    32768: "Failed",
    32769: "Access Denied",
    32770: "Not Supported",
    32771: "Status is unknown",
    32772: "Timeout",
    32773: "Invalid parameter",
    32774: "System is in use",
    32775: "Invalid state for this operation",
    32776: "Incorrect data type",
    32777: "System is not available",
    32778: "Out of memory",
    32779: "File not found",
}


class WmiError(DriverError):
    """A WMI call itself failed (COM/MI error), not a Hyper-V method's return code."""

    def __init__(self, message: str, hresult: int | None = None) -> None:
        super().__init__(message)
        self.hresult = hresult


class WmiNotFound(WmiError):
    """``WBEM_E_NOT_FOUND``: the object behind a path is gone."""


class HyperVError(DriverError):
    """A Hyper-V method answered an error code, or one of its jobs failed."""

    def __init__(self, operation: str, code: int, text: str) -> None:
        super().__init__(f"{operation} failed: {text} ({code})")
        self.operation = operation
        self.code = code
        self.text = text


class HyperVInvalidState(HyperVError, InvalidVmState):
    pass


class HyperVNotSupported(HyperVError, NotSupported):
    pass


class HyperVOutOfMemory(HyperVError, InsufficientCapacity):
    pass


class HyperVUnavailable(HyperVError, HypervisorUnavailable):
    pass


class HyperVJobFailed(HyperVError):
    """A job ended in Terminated, Killed or Exception, or with a non-zero ErrorCode."""

    def __init__(self, operation: str, code: int, text: str, job_state: int) -> None:
        super().__init__(operation, code, text)
        self.job_state = job_state


class HyperVJobTimeout(HyperVError, DriverTimeout):
    pass


class HyperVJobCancelled(HyperVError):
    pass


_BY_CODE: dict[int, type[HyperVError]] = {
    32770: HyperVNotSupported,
    32775: HyperVInvalidState,
    32777: HyperVUnavailable,
    32778: HyperVOutOfMemory,
}


def error_for_code(operation: str, code: int, text: str | None = None) -> HyperVError:
    cls = _BY_CODE.get(code, HyperVError)
    return cls(operation, code, text or RETURN_CODE_TEXT.get(code, "Unknown error"))
