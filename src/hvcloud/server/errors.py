"""The server's one error model: CloudStack's error codes and the base error that carries them.

Every failure the server reports to a client is a :class:`CloudError`: ``code`` is CloudStack's
``errorcode`` (also the HTTP status of a synchronous answer, and a failed job's ``jobresultcode``
detail), ``cserrorcode`` its ``cserrorcode`` (None: omitted) and ``text`` the ``errortext``.
Orchestration raises these; the API renders them in its envelope, the job engine in a job's
result. This table is the one place the codes are defined (``api.errors`` re-exports them).
"""

from __future__ import annotations

# -- errorcode (ApiErrorCode) ----------------------------------------------------------------------
UNAUTHORIZED = 401
METHOD_NOT_ALLOWED = 405
#: ApiErrorCode.API_LIMIT_EXCEED (the API rate limit)
API_LIMIT_EXCEED = 429
MALFORMED_PARAMETER = 430
PARAM_ERROR = 431
UNSUPPORTED_ACTION = 432
INTERNAL_ERROR = 530
ACCOUNT_ERROR = 531
INSUFFICIENT_CAPACITY = 533
RESOURCE_UNAVAILABLE = 534
RESOURCE_ALLOCATION = 535
RESOURCE_IN_USE = 536
#: ApiErrorCode.NETWORK_RULE_CONFLICT_ERROR (a firewall/NAT/LB rule conflicts with another)
NETWORK_RULE_CONFLICT = 537

# -- cserrorcode (CSExceptionErrorCode) -------------------------------------------------------------
CS_RUNTIME = 4250
CS_INSUFFICIENT_CAPACITY = 4325
CS_INVALID_PARAMETER = 4350
CS_PERMISSION_DENIED = 4365
CS_RESOURCE_ALLOCATION = 4370
CS_RESOURCE_IN_USE = 4375
CS_RESOURCE_UNAVAILABLE = 4380
CS_NETWORK_RULE_CONFLICT = 4360
CS_SERVER_API = 9999


class CloudError(Exception):
    """A failure reported to the client with CloudStack's codes; ``str(err)`` is its ``text``.
    ``generic_envelope``: the API answers it as ``errorresponse`` rather than ``<command>response``."""

    def __init__(self, code: int, text: str, cserrorcode: int | None = CS_SERVER_API,
                 *, generic_envelope: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.cserrorcode = cserrorcode
        self.generic_envelope = generic_envelope


def param_error(text: str) -> CloudError:
    return CloudError(PARAM_ERROR, text, CS_INVALID_PARAMETER)


def missing_parameter(command: str, name: str) -> CloudError:
    return param_error(f"Unable to execute API command {command.lower()} due to missing parameter {name}")


def invalid_value(command: str, name: str, detail: str) -> CloudError:
    return param_error(f"Unable to execute API command {command.lower()} due to invalid value. "
                       f"Invalid parameter {name} value={detail}")


def entity_not_found(name: str, value: str) -> CloudError:
    return param_error(f"Invalid parameter {name} value={value} due to incorrect long value format, "
                       "or entity does not exist or due to incorrect parameter annotation for the field "
                       "in api cmd class.")


def permission_denied(text: str) -> CloudError:
    return CloudError(ACCOUNT_ERROR, text, CS_PERMISSION_DENIED)


def in_use(text: str) -> CloudError:
    return CloudError(RESOURCE_IN_USE, text, CS_RESOURCE_IN_USE)


def unavailable(text: str) -> CloudError:
    return CloudError(RESOURCE_UNAVAILABLE, text, CS_RESOURCE_UNAVAILABLE)


def internal(text: str) -> CloudError:
    return CloudError(INTERNAL_ERROR, text, CS_RUNTIME)


def insufficient_capacity(text: str) -> CloudError:
    return CloudError(INSUFFICIENT_CAPACITY, text, CS_INSUFFICIENT_CAPACITY)


def resource_allocation(text: str) -> CloudError:
    """CloudStack's ResourceAllocationException (a resource limit would be exceeded)."""
    return CloudError(RESOURCE_ALLOCATION, text, CS_RESOURCE_ALLOCATION)


def rule_conflict(text: str) -> CloudError:
    """CloudStack's NetworkRuleConflictException (overlapping ports, static NAT against other rules)."""
    return CloudError(NETWORK_RULE_CONFLICT, text, CS_NETWORK_RULE_CONFLICT)
