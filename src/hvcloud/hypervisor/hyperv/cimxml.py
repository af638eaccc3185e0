"""Embedded WMI instances as text (the CIM-XML ``INSTANCE`` element that ``GetText_(1)`` gives).

Hyper-V hands KVP items back as such text, and the strict model uses the same form for every
embedded-instance parameter. Parsing is defensive: the text comes from guests (KVP), so size is
capped and document type declarations (entity tricks) are refused before the XML parser runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 256 * 1024


class CimXmlError(ValueError):
    pass


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dump(class_name: str, props: Mapping[str, Any], types: Mapping[str, str]) -> str:
    inst = ET.Element("INSTANCE", {"CLASSNAME": class_name})
    for name, value in props.items():
        cim_type = types.get(name, "string")
        base = cim_type.split(":")[0].removesuffix("[]")
        xml_type = "string" if base in ("ref", "ref[]", "embedded", "embedded[]") else base
        if cim_type.endswith("[]") or cim_type.startswith(("ref[]", "embedded[]")):
            el = ET.SubElement(inst, "PROPERTY.ARRAY", {"NAME": name, "TYPE": xml_type})
            if value is not None:
                arr = ET.SubElement(el, "VALUE.ARRAY")
                for item in value:
                    ET.SubElement(arr, "VALUE").text = _scalar_text(item)
        else:
            el = ET.SubElement(inst, "PROPERTY", {"NAME": name, "TYPE": xml_type})
            if value is not None:
                ET.SubElement(el, "VALUE").text = _scalar_text(value)
    return ET.tostring(inst, encoding="unicode")


def _convert(text: str, xml_type: str) -> Any:
    if xml_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise CimXmlError(f"bad boolean {text!r}")
        return text.lower() == "true"
    if xml_type.startswith(("uint", "sint")):
        try:
            return int(text)
        except ValueError as exc:
            raise CimXmlError(f"bad {xml_type} {text!r}") from exc
    return text


def load(text: str) -> tuple[str, dict[str, Any]]:
    """Parse one INSTANCE element into (class name, properties). Raises CimXmlError."""
    if not isinstance(text, str):
        raise CimXmlError("embedded instance must be text")
    if len(text) > MAX_TEXT:
        raise CimXmlError("embedded instance text too large")
    if "<!" in text:
        raise CimXmlError("declarations are not allowed in an embedded instance")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CimXmlError(f"malformed embedded instance: {exc}") from exc
    if root.tag != "INSTANCE" or not root.get("CLASSNAME"):
        raise CimXmlError("not an INSTANCE element")
    props: dict[str, Any] = {}
    for el in root:
        name = el.get("NAME")
        xml_type = el.get("TYPE", "string")
        if not name:
            raise CimXmlError("property without a NAME")
        if el.tag == "PROPERTY":
            value_el = el.find("VALUE")
            props[name] = None if value_el is None else _convert(value_el.text or "", xml_type)
        elif el.tag == "PROPERTY.ARRAY":
            arr = el.find("VALUE.ARRAY")
            props[name] = None if arr is None else [
                _convert(v.text or "", xml_type) for v in arr.findall("VALUE")]
        else:
            raise CimXmlError(f"unexpected element {el.tag}")
    return str(root.get("CLASSNAME")), props
