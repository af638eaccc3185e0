"""CloudStack's ``sshkeypair``/``keypair`` and ``userdata`` objects."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.models import SSHKeyPair, UserData
from hvcloud.server.views.fields import compact


def keypair_view(pair: SSHKeyPair, private_key: str | None = None) -> dict[str, Any]:
    """``privatekey`` only in ``createSSHKeyPair``'s answer: it is never stored."""
    account = pair.account
    return compact({"id": pair.id, "name": pair.name, "fingerprint": pair.fingerprint, "account": account.name,
                    "accountid": account.id, "domainid": pair.domain_id, "domain": account.domain.name,
                    "privatekey": private_key, "hasannotations": False})


def user_data_view(row: UserData) -> dict[str, Any]:
    account = row.account
    return compact({"id": row.id, "name": row.name, "account": account.name, "accountid": account.id,
                    "domainid": row.domain_id, "domain": account.domain.name, "userdata": row.user_data,
                    "params": row.params or "", "hasannotations": False})
