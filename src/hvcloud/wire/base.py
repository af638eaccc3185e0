"""Base classes of CloudStack's wire objects and the registry of their Java class names.

Every object on the agent wire is a Java class serialised by Gson: keys are the Java field names
(leading underscores included), ``null`` fields are left out, and a field whose declared type is an
interface (``DataTO``, ``DataStoreTO``) is written as a one-key object ``{"<FQCN>": {...}}``.
These models mirror that: field names are Python-safe with the Java name as alias, unknown keys
are kept (the Java side adds fields across versions, and several answers echo the request), and
numbers are bounded to Java's ``int``/``long`` ranges so that out-of-range input is refused
rather than silently accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

JInt = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
JLong = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
StrMap = dict[str, Any]


class WireModel(BaseModel):
    """A Java object on the wire. ``FQCN`` is its Java class name (empty for plain structs)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False,
                              ser_json_inf_nan="null", hide_input_in_errors=True)

    FQCN: ClassVar[str] = ""

    def to_json_obj(self) -> dict[str, Any]:
        """The object as Gson writes it: Java names, nulls left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Command(WireModel):
    """``com.cloud.agent.api.Command``: the fields every command ends with."""

    contextMap: dict[str, str] | None = None
    wait: JInt | None = None
    bypassHostMaintenance: bool | None = None


class Answer(WireModel):
    """``com.cloud.agent.api.Answer``. The agent always sends ``contextMap`` (``{}``)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.Answer"

    result: bool = True
    details: str | None = None
    contextMap: dict[str, str] | None = Field(default_factory=dict)


class DataTO(WireModel):
    """``com.cloud.agent.api.to.DataTO`` (an interface): templates, volumes, snapshots."""


class DataStoreTO(WireModel):
    """``com.cloud.agent.api.to.DataStoreTO`` (an interface): primary pools and image stores."""


# --------------------------------------------------------------------------- registries

COMMANDS: dict[str, type[Command]] = {}
ANSWERS: dict[str, type[Answer]] = {}
TRANSFER_OBJECTS: dict[str, type[WireModel]] = {}


CommandT = TypeVar("CommandT", bound=type[Command])
AnswerT = TypeVar("AnswerT", bound=type[Answer])
ModelT = TypeVar("ModelT", bound=type[WireModel])


def command(cls: CommandT) -> CommandT:
    """Class decorator: register a command under its FQCN."""
    _register(COMMANDS, cls)
    return cls


def answer(cls: AnswerT) -> AnswerT:
    _register(ANSWERS, cls)
    return cls


def transfer_object(cls: ModelT) -> ModelT:
    _register(TRANSFER_OBJECTS, cls)
    return cls


def _register(table: dict[str, Any], cls: type[WireModel]) -> None:
    if not cls.FQCN:
        raise TypeError(f"{cls.__name__} has no FQCN")
    if cls.FQCN in table and table[cls.FQCN] is not cls:
        raise TypeError(f"duplicate wire class {cls.FQCN}")
    table[cls.FQCN] = cls


# --------------------------------------------------------------------------- interface-typed fields


def unwrap_interface(value: Any, base: type[WireModel]) -> Any:
    """Turn ``{"<FQCN>": {...}}`` into the registered model. The first key names the class, as in
    CloudStack's ``InterfaceTypeAdaptor``."""
    if isinstance(value, WireModel):
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError("expected an object whose single key is a Java class name")
    fqcn, body = next(iter(value.items()))
    if not isinstance(body, dict):
        raise ValueError(f"the body of {fqcn} must be an object")
    cls = TRANSFER_OBJECTS.get(fqcn)
    if cls is None:
        raise ValueError(f"unknown transfer object class {fqcn}")
    if not issubclass(cls, base):
        raise ValueError(f"{fqcn} is not a {base.__name__}")
    return cls.model_validate(body)


def wrap_interface(value: WireModel) -> dict[str, Any]:
    return {type(value).FQCN: value.to_json_obj()}


def _unwrap_data(value: Any) -> Any:
    return unwrap_interface(value, DataTO)


def _unwrap_store(value: Any) -> Any:
    return unwrap_interface(value, DataStoreTO)


WrappedDataTO = Annotated[DataTO, BeforeValidator(_unwrap_data), PlainSerializer(wrap_interface)]
WrappedDataStoreTO = Annotated[DataStoreTO, BeforeValidator(_unwrap_store),
                               PlainSerializer(wrap_interface)]
