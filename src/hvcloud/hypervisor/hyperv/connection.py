"""The narrow seam between the driver and WMI.

The driver talks to WMI only through :class:`WmiConnection` and :class:`WmiObject`. On Windows,
:class:`PyMIConnection` implements them with PyMI's ``wmi``-compatible module; in tests the strict
model in :mod:`tests.support.hyperv_fake` does. Keep this surface small: every method added
here must also exist, strictly checked, in the model.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Protocol

from hvcloud.hypervisor.hyperv import schema, wql
from hvcloud.hypervisor.hyperv.errors import WmiError, WmiNotFound

_WBEM_E_NOT_FOUND = 0x80041002


class WmiObject(Protocol):
    """One WMI instance (a local copy: writes change nothing until sent through a method)."""

    @property
    def class_name(self) -> str: ...

    @property
    def path(self) -> str: ...

    def __getitem__(self, prop: str) -> Any: ...

    def __setitem__(self, prop: str, value: Any) -> None: ...


class WmiConnection(Protocol):
    """One WMI namespace on one host."""

    def query(self, class_name: str, where: Mapping[str, wql.WqlValue] | None = None
              ) -> list[WmiObject]:
        """Instances of the class (and its subclasses) whose properties equal ``where``."""
        ...

    def get(self, path: str) -> WmiObject:
        """Re-read an instance by object path. Raises WmiNotFound if it is gone."""
        ...

    def associators(self, obj: WmiObject, *, assoc_class: str, result_class: str
                    ) -> list[WmiObject]: ...

    def new_instance(self, class_name: str) -> WmiObject:
        """A blank instance of the class, for embedding as a method parameter."""
        ...

    def embed(self, obj: WmiObject) -> str:
        """The instance as embedded-instance text (``GetText_(1)``)."""
        ...

    def invoke(self, obj: WmiObject, method: str, **params: Any) -> dict[str, Any]:
        """Call a method; returns the out-parameters by name, ``ReturnValue`` included."""
        ...


# --------------------------------------------------------------------------- PyMI (Windows)


def _hresult(exc: BaseException) -> int | None:
    com = getattr(exc, "com_error", None)
    value = getattr(com, "hresult", None)
    if isinstance(value, int):
        return value & 0xFFFFFFFF
    return None


def _translate(exc: BaseException, what: str) -> WmiError:
    hresult = _hresult(exc)
    cls = WmiNotFound if hresult == _WBEM_E_NOT_FOUND else WmiError
    return cls(f"{what}: {exc}", hresult)


class _PyMIObject:
    __slots__ = ("_o",)

    def __init__(self, o: Any) -> None:
        self._o = o

    @property
    def raw(self) -> Any:
        return self._o

    @property
    def class_name(self) -> str:
        return str(self._o.path().Class)

    @property
    def path(self) -> str:
        return str(self._o.path_())

    def __getitem__(self, prop: str) -> Any:
        return getattr(self._o, prop)

    def __setitem__(self, prop: str, value: Any) -> None:
        setattr(self._o, prop, value)


class PyMIConnection:
    """:class:`WmiConnection` over PyMI's ``wmi`` module. Windows only."""

    def __init__(self, namespace: str = schema.V2, host: str = ".") -> None:
        if sys.platform != "win32":
            raise WmiError("PyMI is only available on Windows")
        import wmi

        self._wmi: Any = wmi
        self._conn: Any
        self._host = host
        self._namespace = namespace
        moniker = f"//{host}/{namespace.replace(chr(92), '/')}"
        try:
            self._conn = wmi.WMI(moniker=moniker)
        except wmi.x_wmi as exc:
            raise _translate(exc, f"connecting to {namespace}") from exc

    def _wrap(self, o: Any) -> WmiObject:
        return _PyMIObject(o)

    def query(self, class_name: str, where: Mapping[str, wql.WqlValue] | None = None
              ) -> list[WmiObject]:
        text = wql.select(class_name, where)
        try:
            return [self._wrap(o) for o in self._conn.query(text)]
        except self._wmi.x_wmi as exc:
            raise _translate(exc, f"query {class_name}") from exc

    def get(self, path: str) -> WmiObject:
        try:
            obj = self._wmi.WMI(moniker=path.replace("\\", "/"))
        except self._wmi.x_wmi as exc:
            raise _translate(exc, f"get {path}") from exc
        if obj is None:
            raise WmiNotFound(f"{path} not found", _WBEM_E_NOT_FOUND)
        return self._wrap(obj)

    def associators(self, obj: WmiObject, *, assoc_class: str, result_class: str
                    ) -> list[WmiObject]:
        raw = _raw(obj)
        try:
            found = raw.associators(wmi_association_class=wql.identifier(assoc_class),
                                    wmi_result_class=wql.identifier(result_class))
        except self._wmi.x_wmi as exc:
            raise _translate(exc, f"associators of {obj.class_name}") from exc
        return [self._wrap(o) for o in found]

    def new_instance(self, class_name: str) -> WmiObject:
        try:
            return self._wrap(getattr(self._conn, wql.identifier(class_name)).new())
        except self._wmi.x_wmi as exc:
            raise _translate(exc, f"new {class_name}") from exc

    def embed(self, obj: WmiObject) -> str:
        return str(_raw(obj).GetText_(1))

    def invoke(self, obj: WmiObject, method: str, **params: Any) -> dict[str, Any]:
        names = schema.out_parameter_names(obj.class_name, method)
        raw = _raw(obj)
        try:
            result = getattr(raw, wql.identifier(method))(**params)
        except self._wmi.x_wmi as exc:
            raise _translate(exc, f"{obj.class_name}.{method}") from exc
        values = list(result) if isinstance(result, tuple) else [result]
        if len(values) != len(names):
            raise WmiError(f"{obj.class_name}.{method} returned {len(values)} values, "
                           f"expected {names}")
        out = dict(zip(names, values, strict=True))
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = [self._wrap(v) if hasattr(v, "path_") else v for v in value]
        return out


def _raw(obj: WmiObject) -> Any:
    if not isinstance(obj, _PyMIObject):
        raise TypeError("object does not come from a PyMI connection")
    return obj.raw
