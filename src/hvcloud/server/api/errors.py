"""The API's errors: the server's one error model (:mod:`hvcloud.server.errors`, whose ``CloudError``
the API renders in CloudStack's error envelope), re-exported for the commands, and the errors only
the API raises (credentials, parameters of a command)."""

from __future__ import annotations

from hvcloud.server.errors import ACCOUNT_ERROR as ACCOUNT_ERROR
from hvcloud.server.errors import API_LIMIT_EXCEED as API_LIMIT_EXCEED
from hvcloud.server.errors import CS_INSUFFICIENT_CAPACITY as CS_INSUFFICIENT_CAPACITY
from hvcloud.server.errors import CS_INVALID_PARAMETER as CS_INVALID_PARAMETER
from hvcloud.server.errors import CS_PERMISSION_DENIED as CS_PERMISSION_DENIED
from hvcloud.server.errors import CS_RESOURCE_ALLOCATION as CS_RESOURCE_ALLOCATION
from hvcloud.server.errors import CS_RESOURCE_IN_USE as CS_RESOURCE_IN_USE
from hvcloud.server.errors import CS_RESOURCE_UNAVAILABLE as CS_RESOURCE_UNAVAILABLE
from hvcloud.server.errors import CS_RUNTIME as CS_RUNTIME
from hvcloud.server.errors import CS_SERVER_API as CS_SERVER_API
from hvcloud.server.errors import INSUFFICIENT_CAPACITY as INSUFFICIENT_CAPACITY
from hvcloud.server.errors import INTERNAL_ERROR as INTERNAL_ERROR
from hvcloud.server.errors import MALFORMED_PARAMETER as MALFORMED_PARAMETER
from hvcloud.server.errors import METHOD_NOT_ALLOWED as METHOD_NOT_ALLOWED
from hvcloud.server.errors import NETWORK_RULE_CONFLICT as NETWORK_RULE_CONFLICT
from hvcloud.server.errors import PARAM_ERROR as PARAM_ERROR
from hvcloud.server.errors import RESOURCE_ALLOCATION as RESOURCE_ALLOCATION
from hvcloud.server.errors import RESOURCE_IN_USE as RESOURCE_IN_USE
from hvcloud.server.errors import RESOURCE_UNAVAILABLE as RESOURCE_UNAVAILABLE
from hvcloud.server.errors import UNAUTHORIZED as UNAUTHORIZED
from hvcloud.server.errors import UNSUPPORTED_ACTION as UNSUPPORTED_ACTION
from hvcloud.server.errors import CloudError
from hvcloud.server.errors import entity_not_found as entity_not_found
from hvcloud.server.errors import in_use as in_use
from hvcloud.server.errors import insufficient_capacity as insufficient_capacity
from hvcloud.server.errors import internal as internal
from hvcloud.server.errors import invalid_value as invalid_value
from hvcloud.server.errors import missing_parameter as missing_parameter
from hvcloud.server.errors import param_error as param_error
from hvcloud.server.errors import permission_denied as permission_denied
from hvcloud.server.errors import resource_allocation as resource_allocation
from hvcloud.server.errors import rule_conflict as rule_conflict
from hvcloud.server.errors import unavailable as unavailable

CREDENTIALS_TEXT = "unable to verify user credentials and/or request signature"
NOT_AVAILABLE_TEXT = "The given command does not exist or it is not available for user"

#: the name API code has always used for the server's error
ApiError = CloudError


def unauthorized(text: str = CREDENTIALS_TEXT, *, generic_envelope: bool = False) -> ApiError:
    return ApiError(UNAUTHORIZED, text, None, generic_envelope=generic_envelope)


def not_available_for(command: str, account: str) -> ApiError:
    """The caller's role does not allow the command (CloudStack's dynamic role checker)."""
    return ApiError(UNSUPPORTED_ACTION, f"The API [{command}] does not exist or is not available for the account "
                    f"{account}.")
