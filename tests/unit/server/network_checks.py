"""What the network API tests share: a refused call changes nothing and names the field at fault."""

from __future__ import annotations

from typing import Any

from hvcloud.server.state import ServerState
from tests.fuzz.api_fuzz import db_fingerprint, settle
from tests.support.server_api import Caller


def refused(state: ServerState, caller: Caller, command: str, /, *, code: int = 431, field: str | None = None,
            **params: Any) -> str:
    """Call ``command``, expect ``code``, the field named in the text, and no row written; returns the text."""
    assert settle(state.engine)
    before = db_fingerprint(state.engine)
    status, body = caller.call(command, **params)
    assert status == code, (command, params, body)
    assert body["errorcode"] == code
    text = str(body["errortext"])
    if field is not None:
        assert field in text, (field, text)
    assert db_fingerprint(state.engine) == before, f"{command} {params} wrote rows although refused"
    return text
