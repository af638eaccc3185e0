"""CloudStack's ``project`` (listProjects and the project commands' results) and ``projectaccount``
(listProjectAccounts) objects."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.models import Account, Project, ProjectAccount
from hvcloud.server.views.fields import compact


def project_view(project: Project, account_name: str, owners: list[Account],
                 usage: dict[str, object]) -> dict[str, Any]:
    """``owner`` lists the Admin members; ``usage`` is the project account's ``vmlimit``/``vmtotal``/
    ``vmavailable``… (``resource_limits.account_usage``)."""
    return compact({
        "id": project.id, "name": project.name, "displaytext": project.display_text,
        "domainid": project.domain_id, "domain": project.domain.name, "domainpath": project.domain.path,
        "owner": [{"account": a.name, "accountid": a.id} for a in owners],
        "projectaccountname": account_name, "state": project.state, "created": project.created,
        **usage,
    })


def project_account_view(project: Project, row: ProjectAccount) -> dict[str, Any]:
    account = row.account
    return compact({
        "projectid": project.id, "project": project.name, "accountid": account.id, "account": account.name,
        "accounttype": account.account_type, "role": row.role, "domainid": account.domain_id,
        "domain": account.domain.name,
    })
