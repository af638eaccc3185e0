"""A stand-in for PyMI's ``wmi`` module over the strict model, to test ``PyMIConnection``.

It behaves as PyMI does where the adapter depends on it:

- ``wmi.WMI(moniker="//host/root/virtualization/v2")`` opens a namespace; ``wmi.WMI(moniker=...)``
  of an object path (forward slashes, a backslash in a key written ``//``) re-reads one instance,
  the way PyMI parses a moniker;
- object paths (``path_()``, reference properties and out-parameters) are full WMI paths whose key
  values escape a backslash as ``\\\\``; references handed back are re-looked-up from that text;
- a method returns a tuple of *all* its out-parameters sorted by name, ``ReturnValue`` included
  (a one-tuple when that is all), references as path text and embedded instances as objects;
- failures raise ``wmi.x_wmi`` whose ``com_error.hresult`` is the signed HRESULT.

Install it with :func:`install` (it also makes ``sys.platform`` read ``win32``).
"""

from __future__ import annotations

import re
import sys
import types
from typing import Any

import pytest

from hvcloud.hypervisor.hyperv import schema
from hvcloud.hypervisor.hyperv.errors import WmiError, WmiNotFound
from tests.support.hyperv_fake.model import HyperVModel, ModelConnection, ModelObject

_PATH = re.compile(r'^(\\\\[^\\]+\\[^:]+:[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z]+=")(.*)(")$', re.S)
_MONIKER = re.compile(r"^(?:winmgmts:)?//([^/]+)/([^:]*)(?::(.*))?$", re.S)
_WHERE = re.compile(r"^SELECT \* FROM ([A-Za-z_][A-Za-z0-9_]*)(?: WHERE (.*))?$", re.S)
_COND = re.compile(r"""^([A-Za-z_][A-Za-z0-9_]*) = ('[^']*'|"[^"]*"|TRUE|FALSE|-?\d+)$""")
_NOT_FOUND = 0x80041002 - 2**32  # PyMI reports HRESULTs signed


class ComError(Exception):
    def __init__(self, hresult: int) -> None:
        super().__init__(hex(hresult))
        self.hresult = hresult


class XWmi(Exception):
    """PyMI's ``wmi.x_wmi``."""

    def __init__(self, message: str, hresult: int) -> None:
        super().__init__(message)
        self.com_error = ComError(hresult)


def _x(exc: WmiError) -> XWmi:
    code = exc.hresult if exc.hresult is not None else 0x80041001
    return XWmi(str(exc), code - 2**32 if code >= 2**31 else code)


def escape(value: Any) -> Any:
    """Model values → what PyMI shows: object paths with a key's backslashes doubled."""
    if isinstance(value, str):
        m = _PATH.match(value)
        return m.group(1) + m.group(2).replace("\\", "\\\\") + m.group(3) if m else value
    if isinstance(value, list | tuple):
        return [escape(v) for v in value]
    return value


def unescape(value: Any) -> Any:
    """What the adapter hands PyMI → model values."""
    if isinstance(value, str):
        m = _PATH.match(value)
        return m.group(1) + m.group(2).replace("\\\\", "\\") + m.group(3) if m else value
    if isinstance(value, list | tuple):
        return [unescape(v) for v in value]
    return value


class _Path:
    def __init__(self, class_name: str) -> None:
        self.Class = class_name


class StandInObject:
    """One instance as PyMI shows it: properties as attributes, methods as callables."""

    def __init__(self, conn: ModelConnection, obj: ModelObject) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_obj", obj)

    def path(self) -> _Path:
        return _Path(self._obj.class_name)

    def path_(self) -> str:
        return str(escape(self._obj.path))

    def GetText_(self, fmt: int) -> str:
        assert fmt == 1, "the adapter asks for WMI DTD 2.0 text"
        return self._conn.embed(self._obj)

    def associators(self, wmi_association_class: str, wmi_result_class: str
                    ) -> list[StandInObject]:
        try:
            found = self._conn.associators(self._obj, assoc_class=wmi_association_class,
                                           result_class=wmi_result_class)
        except WmiError as exc:
            raise _x(exc) from exc
        return [StandInObject(self._conn, o) for o in found]

    def __getattr__(self, name: str) -> Any:
        if name in schema.properties(self._obj.class_name):
            return escape(self._obj[name])
        if schema.method(self._obj.class_name, name) is not None:
            return lambda **params: self._call(name, params)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._obj[name] = unescape(value)

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            out = self._conn.invoke(self._obj, method, **{k: unescape(v)
                                                          for k, v in params.items()})
        except WmiError as exc:
            raise _x(exc) from exc
        mdef = schema.method(self._obj.class_name, method)
        assert mdef is not None
        values = []
        for name in sorted([*mdef.outputs, "ReturnValue"]):
            value = out.get(name)
            if isinstance(value, list):
                value = tuple(StandInObject(self._conn, v) if isinstance(v, ModelObject)
                              else escape(v) for v in value)
            else:
                value = escape(value)
            values.append(value)
        return tuple(values)


class _Class:
    def __init__(self, conn: ModelConnection, name: str) -> None:
        self._conn, self._name = conn, name

    def new(self) -> StandInObject:
        return StandInObject(self._conn, self._conn.new_instance(self._name))


class StandInNamespace:
    def __init__(self, model: HyperVModel, namespace: str) -> None:
        self._conn = model.connection(namespace)

    def query(self, text: str) -> list[StandInObject]:
        class_name, where = _parse_wql(text)
        try:
            return [StandInObject(self._conn, o) for o in self._conn.query(class_name, where)]
        except WmiError as exc:
            raise _x(exc) from exc

    def get(self, path: str) -> StandInObject:
        try:
            return StandInObject(self._conn, self._conn.get(path))
        except WmiNotFound as exc:
            raise _x(exc) from exc

    def __getattr__(self, name: str) -> _Class:
        if name not in schema.CLASSES:
            raise XWmi(f"no class {name}", 0x80041010 - 2**32)
        return _Class(self._conn, name)


def _parse_wql(text: str) -> tuple[str, dict[str, Any]]:
    m = _WHERE.match(text)
    if m is None:
        raise XWmi(f"bad query {text!r}", 0x80041017 - 2**32)
    where: dict[str, Any] = {}
    for cond in (m.group(2) or "").split(" AND ") if m.group(2) else []:
        c = _COND.match(cond)
        if c is None:
            raise XWmi(f"bad condition {cond!r}", 0x80041017 - 2**32)
        raw = c.group(2)
        where[c.group(1)] = (raw == "TRUE" if raw in ("TRUE", "FALSE") else
                             raw[1:-1] if raw[0] in "'\"" else int(raw))
    return m.group(1), where


def _parse_moniker(moniker: str) -> tuple[str, str, str | None]:
    """(host, namespace with backslashes, object path in model form or None), as PyMI reads it."""
    m = _MONIKER.match(moniker)
    if m is None:
        raise XWmi(f"bad moniker {moniker!r}", 0x8004100E - 2**32)
    host, namespace, obj = m.groups()
    ns = namespace.replace("/", "\\")
    if not obj:
        return host, ns, None
    cls, _, key = obj.partition(".")
    name, _, value = key.partition("=")
    value = value.strip('"').replace("//", "\\")  # PyMI's unescaping of a moniker's key
    return host, ns, f'\\\\{host}\\{ns}:{cls}.{name}="{value}"'


def module(model: HyperVModel) -> types.ModuleType:
    """A ``wmi`` module bound to the model."""
    mod = types.ModuleType("wmi")

    def wmi(moniker: str) -> StandInNamespace | StandInObject:
        host, ns, path = _parse_moniker(moniker)
        if ns not in (schema.V2, schema.CIMV2):
            raise XWmi(f"no namespace {ns}", 0x8004100E - 2**32)
        namespace = StandInNamespace(model, ns)
        if path is None:
            return namespace
        if host == ".":
            path = path.replace("\\\\.\\", f"\\\\{model.host}\\", 1)
        return namespace.get(path)

    mod.WMI = wmi  # type: ignore[attr-defined]
    mod.x_wmi = XWmi  # type: ignore[attr-defined]
    return mod


def install(monkeypatch: pytest.MonkeyPatch, model: HyperVModel) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "wmi", module(model))
