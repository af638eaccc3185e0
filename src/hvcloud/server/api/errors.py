"""API errors with CloudStack's ``errorcode`` (= HTTP status) and ``cserrorcode`` values."""

from __future__ import annotations

UNAUTHORIZED = 401
METHOD_NOT_ALLOWED = 405
MALFORMED_PARAMETER = 430
PARAM_ERROR = 431
UNSUPPORTED_ACTION = 432
INTERNAL_ERROR = 530
ACCOUNT_ERROR = 531
INSUFFICIENT_CAPACITY = 533
RESOURCE_UNAVAILABLE = 534
RESOURCE_ALLOCATION = 535
RESOURCE_IN_USE = 536

CS_RUNTIME = 4250
CS_INSUFFICIENT_CAPACITY = 4325
CS_INVALID_PARAMETER = 4350
CS_PERMISSION_DENIED = 4365
CS_RESOURCE_ALLOCATION = 4370
CS_RESOURCE_IN_USE = 4375
CS_RESOURCE_UNAVAILABLE = 4380
CS_SERVER_API = 9999

CREDENTIALS_TEXT = "unable to verify user credentials and/or request signature"
NOT_AVAILABLE_TEXT = "The given command does not exist or it is not available for user"


class ApiError(Exception):
    """An error answered in CloudStack's error envelope; ``cserrorcode`` None means omitted."""

    def __init__(self, code: int, text: str, cserrorcode: int | None = CS_SERVER_API,
                 *, generic_envelope: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.cserrorcode = cserrorcode
        self.generic_envelope = generic_envelope


def unauthorized(text: str = CREDENTIALS_TEXT, *, generic_envelope: bool = False) -> ApiError:
    return ApiError(UNAUTHORIZED, text, None, generic_envelope=generic_envelope)


def param_error(text: str) -> ApiError:
    return ApiError(PARAM_ERROR, text, CS_INVALID_PARAMETER)


def missing_parameter(command: str, name: str) -> ApiError:
    return param_error(f"Unable to execute API command {command.lower()} due to missing parameter {name}")


def invalid_value(command: str, name: str, detail: str) -> ApiError:
    return param_error(f"Unable to execute API command {command.lower()} due to invalid value. "
                       f"Invalid parameter {name} value={detail}")


def entity_not_found(name: str, value: str) -> ApiError:
    return param_error(f"Invalid parameter {name} value={value} due to incorrect long value format, "
                       "or entity does not exist or due to incorrect parameter annotation for the field "
                       "in api cmd class.")


def permission_denied(text: str) -> ApiError:
    return ApiError(ACCOUNT_ERROR, text, CS_PERMISSION_DENIED)


def in_use(text: str) -> ApiError:
    return ApiError(RESOURCE_IN_USE, text, CS_RESOURCE_IN_USE)


def unavailable(text: str) -> ApiError:
    return ApiError(RESOURCE_UNAVAILABLE, text, CS_RESOURCE_UNAVAILABLE)


def internal(text: str) -> ApiError:
    return ApiError(INTERNAL_ERROR, text, CS_RUNTIME)


def insufficient_capacity(text: str) -> ApiError:
    return ApiError(INSUFFICIENT_CAPACITY, text, CS_INSUFFICIENT_CAPACITY)


def resource_allocation(text: str) -> ApiError:
    """CloudStack's ResourceAllocationException (a resource limit would be exceeded)."""
    return ApiError(RESOURCE_ALLOCATION, text, CS_RESOURCE_ALLOCATION)
