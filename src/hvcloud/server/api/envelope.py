"""CloudStack response envelopes in JSON and XML, and the date format clients parse."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from hvcloud.server.views.fields import format_date

CLOUDSTACK_VERSION = "4.15.2.0"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
XML_CONTENT_TYPE = "text/xml; charset=UTF-8"


def error_body(code: int, text: str, cserrorcode: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"uuidList": [], "errorcode": code}
    if cserrorcode is not None:
        body["cserrorcode"] = cserrorcode
    body["errortext"] = text
    return body


def render_json(response_name: str, body: dict[str, Any]) -> bytes:
    return json.dumps({response_name: body}, ensure_ascii=False, separators=(",", ":")).encode()


#: characters XML 1.0 cannot carry at all, not even as character references
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str) -> str:
    """Escaped text; characters XML cannot hold (echoed from hostile parameters) become U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", value))


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_date(value)
    return xml_text(str(value))


def _xml_element(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _xml_element(name, item, out)
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, inner in value.items():
            _xml_element(key, inner, out)
        out.append(f"</{name}>")
        return
    out.append(f"<{name}>{_xml_value(value)}</{name}>")


def render_xml(response_name: str, body: dict[str, Any]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f"<{response_name} cloud-stack-version={quoteattr(CLOUDSTACK_VERSION)}>"]
    for key, value in body.items():
        _xml_element(key, value, out)
    out.append(f"</{response_name}>")
    return "".join(out).encode()
