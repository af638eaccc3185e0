"""The command registry: every API command with its parameters, role and sync/async nature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hvcloud.server.api import errors
from hvcloud.server.api.params import ParamType, RequestParams, convert
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN

if TYPE_CHECKING:
    from hvcloud.server.api.context import CallContext
    from hvcloud.server.api.results import Result


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType = "string"
    required: bool = False
    description: str = ""
    length: int = 255


LIST_PARAMS = (
    Param("keyword", "string", description="List by keyword"),
    Param("page", "integer", description="The page number of the results"),
    Param("pagesize", "integer", description="The number of results per page"),
)
LISTALL_PARAM = Param("listall", "boolean",
                      description="If true, list all resources the caller may see, not only its own")
#: who a new resource is for: an admin acting for an account, or a project's member for the project
#: (``CallContext.owner_for``)
OWNER_PARAMS = (
    Param("account", description="an optional account; must be used with domainId"),
    Param("domainid", "uuid", description="an optional domainId; if the account parameter is used, domainId "
          "must also be used"),
    Param("projectid", "uuid", description="an optional project for the resource"),
)
#: whose resources a list shows (``CallContext.owner_and_domain_filter``)
LIST_OWNER_PARAMS = (
    Param("account", description="list resources by account; must be used with the domainId parameter"),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: also the sub-domains' resources"),
    Param("projectid", "uuid", description="list objects by project; -1: of all the caller's projects"),
)


Handler = Callable[["CallContext", "Args"], "Result"]
Text = str
Flag = bool
TextList = list[str]


@dataclass(frozen=True)
class ApiCommand:
    name: str
    description: str
    handler: Handler
    params: tuple[Param, ...]
    admin_only: bool
    isasync: bool
    response: tuple[str, ...]
    #: an admin command domain admins may call too (the handler keeps them to their subtree)
    domain_admin: bool = False

    @property
    def root_only(self) -> bool:
        """For root admins only: what the default roles other than Root Admin never allow."""
        return self.admin_only and not self.domain_admin

    def open_to(self, account_type: int) -> bool:
        """Whether callers of ``account_type`` may call it at all (their role's rules still apply)."""
        return (not self.admin_only or account_type == ACCOUNT_TYPE_ADMIN
                or (self.domain_admin and account_type == ACCOUNT_TYPE_DOMAIN_ADMIN))

    @property
    def response_name(self) -> str:
        return self.name.lower() + "response"


@dataclass
class Args:
    """Converted parameters of one call, with typed getters for handlers."""

    command: Text
    values: dict[Text, Any] = field(default_factory=dict)
    maps: dict[Text, dict[int, dict[Text, Text]]] = field(default_factory=dict)

    def has(self, name: Text) -> Flag:
        return name in self.values

    def str(self, name: Text) -> Text:
        value = self.values.get(name)
        if not isinstance(value, Text):
            raise errors.missing_parameter(self.command, name)
        return value

    def opt_str(self, name: Text) -> Text | None:
        value = self.values.get(name)
        return value if isinstance(value, Text) else None

    def bool(self, name: Text, default: Flag = False) -> Flag:
        value = self.values.get(name)
        return value if isinstance(value, Flag) else default

    def opt_bool(self, name: Text) -> Flag | None:
        value = self.values.get(name)
        return value if isinstance(value, Flag) else None

    def opt_int(self, name: Text) -> int | None:
        value = self.values.get(name)
        return value if isinstance(value, int) and not isinstance(value, Flag) else None

    def list(self, name: Text) -> TextList:
        value = self.values.get(name)
        return list(value) if isinstance(value, list) else []

    def opt_date(self, name: Text) -> datetime | None:
        value = self.values.get(name)
        return value if isinstance(value, datetime) else None

    def map(self, name: Text) -> dict[int, dict[Text, Text]]:
        return self.maps.get(name, {})


class Registry:
    def __init__(self) -> None:
        self._commands: dict[str, ApiCommand] = {}

    def command(self, name: str, description: str, *, params: tuple[Param, ...] | list[Param] = (),
                admin: bool = True, isasync: bool = False, listall: bool = False,
                response: tuple[str, ...] = (), domain_admin: bool = False) -> Callable[[Handler], Handler]:
        """Register ``name``; list commands (``list*``) get keyword/page/pagesize automatically.
        ``admin``: root admins only, unless ``domain_admin`` opens it to domain admins as well."""
        all_params = tuple(params)
        if name.startswith("list"):
            all_params += LIST_PARAMS
            if listall:
                all_params += (LISTALL_PARAM,)

        def register(handler: Handler) -> Handler:
            if name in self._commands:
                raise ValueError(f"command {name} registered twice")
            self._commands[name] = ApiCommand(name, description, handler, all_params, admin, isasync,
                                              response, domain_admin)
            return handler

        return register

    def get(self, name: str) -> ApiCommand | None:
        return self._commands.get(name)

    def all(self) -> list[ApiCommand]:
        return sorted(self._commands.values(), key=lambda c: c.name)


REGISTRY = Registry()


def bind(command: ApiCommand, params: RequestParams) -> Args:
    """Check required parameters and convert values to their declared types."""
    args = Args(command.name)
    for spec in command.params:
        key = spec.name.lower()
        if spec.type == "map":
            entries = params.maps.get(key)
            if entries:
                args.maps[spec.name] = entries
            elif spec.required:
                raise errors.missing_parameter(command.name, spec.name)
            continue
        raw = params.get(key)
        if raw is None:
            if spec.required:
                raise errors.missing_parameter(command.name, spec.name)
            continue
        if spec.required and raw.strip() == "":
            raise errors.missing_parameter(command.name, spec.name)
        if spec.type == "string" and len(raw) > spec.length:
            raise errors.param_error(f"Value greater than max allowed length {spec.length} for param: "
                                     f"{spec.name}")
        args.values[spec.name] = convert(command.name, spec.name, spec.type, raw)
    return args
