"""Security groups: create, delete and list groups; authorize and revoke their ingress and egress rules.

A group belongs to an account (the caller's, or for admins ``account`` in ``domainid``). Rules are
checked and written in the request (a refusal changes nothing); the job then sends the new rule sets
to the hosts of the group's Running VMs (:mod:`hvcloud.server.orchestration.networks.sg_sync`).
"""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import LIST_OWNER_PARAMS, OWNER_PARAMS, REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import SecurityGroup, SecurityGroupRule, SecurityGroupVmMap, VMInstance
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.networks import security_groups as SG
from hvcloud.server.orchestration.networks import sg_sync
from hvcloud.server.views.security_groups import group_view, group_views

command = REGISTRY.command

GROUP_FIELDS = ("id", "name", "description", "account", "domainid", "domain", "ingressrule", "egressrule", "tags",
                "virtualmachinecount", "virtualmachineids")
RULE_PARAMS = (
    Param("securitygroupid", "uuid", description="The ID of the security group. Mutually exclusive with "
          "securityGroupName parameter"),
    Param("securitygroupname", description="The name of the security group. Mutually exclusive with "
          "securityGroupId parameter"),
    Param("protocol", length=32, description="TCP is default. UDP is the other supported protocol"),
    Param("startport", "integer", description="start port for this ingress/egress rule"),
    Param("endport", "integer", description="end port for this ingress/egress rule"),
    Param("icmptype", "integer", description="type of the icmp message being sent"),
    Param("icmpcode", "integer", description="error code for this icmp message"),
    Param("cidrlist", "list", length=16384, description="the cidr list associated. Multiple entries must be "
          "separated by a single comma character (,)."),
    Param("usersecuritygrouplist", "map", description="user to security group mapping: "
          "usersecuritygrouplist[0].account=..&usersecuritygrouplist[0].group=.."),
    *OWNER_PARAMS,
)



def _group_by_id(ctx: CallContext, group_id: str, param: str) -> SecurityGroup:
    group = ctx.get(SecurityGroup, param, group_id)
    if not ctx.may_act_for(group.account_id):
        raise errors.entity_not_found(param, group_id)
    return group


def _group(ctx: CallContext, args: Args, id_param: str, name_param: str) -> SecurityGroup:
    """The group a command names by id or (in the owner's account) by name: one of the two."""
    group_id, name = args.opt_str(id_param), args.opt_str(name_param)
    if group_id is not None and name is not None:
        raise errors.param_error(f"Invalid {name_param}: {id_param} and {name_param} are mutually exclusive")
    if group_id is not None:
        if args.has("account") or args.has("domainid") or args.has("projectid"):
            ctx.owner_for(args)  # the caller may act for that account
        return _group_by_id(ctx, group_id, id_param)
    if name is None:
        raise errors.param_error(f"Invalid {id_param}: give either {id_param} or {name_param}")
    owner = ctx.owner_for(args)
    group = SG.find_group(ctx.db, owner.id, name)
    if group is None and name.lower() == SG.DEFAULT_GROUP:
        group = SG.default_group(ctx.db, owner)  # every account has one (made when first needed)
    if group is None:
        raise errors.param_error(f"Invalid {name_param}: Unable to find security group {name[:64]} for account "
                                 f"{owner.name}")
    return group


@command("createSecurityGroup", "Creates a security group", admin=False, params=[
    Param("name", required=True, description="name of the security group"),
    Param("description", length=4096, description="the description of the security group"),
    *OWNER_PARAMS,
], response=GROUP_FIELDS)
def create_security_group(ctx: CallContext, args: Args) -> Result:
    owner = ctx.owner_for(args)
    group = SG.create_group(ctx.db, ctx.user, owner, args.str("name"), args.opt_str("description"))
    return ObjectResult("securitygroup", group_view(ctx.db, group))


@command("deleteSecurityGroup", "Deletes security group", admin=False, params=[
    Param("id", "uuid", description="The ID of the security group. Mutually exclusive with name parameter"),
    Param("name", description="The ID of the security group. Mutually exclusive with id parameter"),
    *OWNER_PARAMS,
])
def delete_security_group(ctx: CallContext, args: Args) -> Result:
    group = _group(ctx, args, "id", "name")
    SG.delete_group(ctx.db, ctx.user, group)
    return SuccessResult()


@command("listSecurityGroups", "Lists security groups", admin=False, listall=True, params=[
    Param("id", "uuid", description="list the security group by the id provided"),
    Param("securitygroupname", description="lists security groups by name"),
    Param("virtualmachineid", "uuid", description="lists security groups by virtual machine id"),
    *LIST_OWNER_PARAMS,
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
], response=GROUP_FIELDS)
def list_security_groups(ctx: CallContext, args: Args) -> Result:
    stmt = select(SecurityGroup)
    owner = ctx.owner_and_domain_filter(SecurityGroup.account_id, SecurityGroup.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    group_id = args.opt_str("id")
    if group_id is not None:
        stmt = stmt.where(SecurityGroup.id == group_id)
    name = args.opt_str("securitygroupname")
    if name is not None:
        stmt = stmt.where(SecurityGroup.name == name)
    vm_id = args.opt_str("virtualmachineid")
    if vm_id is not None:
        vm = ctx.db.get(VMInstance, vm_id)
        if vm is None or vm.removed is not None or not ctx.may_act_for(vm.account_id):
            raise errors.entity_not_found("virtualmachineid", vm_id)
        stmt = stmt.where(SecurityGroup.id.in_(select(SecurityGroupVmMap.security_group_id)
                                               .where(SecurityGroupVmMap.vm_id == vm_id)))
    for cond in tag_conditions(args, T.SECURITY_GROUP, SecurityGroup.id):
        stmt = stmt.where(cond)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(SecurityGroup.name.ilike(pattern, escape="\\"),
                              SecurityGroup.description.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(SecurityGroup.created, SecurityGroup.name, SecurityGroup.id), args)
    return ListResult("securitygroup", group_views(ctx.db, rows), count)


def _rule_spec(args: Args) -> SG.RuleSpec:
    groups: list[tuple[str | None, str | None]] = []
    for _i, entry in sorted(args.map("usersecuritygrouplist").items()):
        unknown = set(entry) - {"account", "group"}
        if unknown:
            raise errors.param_error(f"Invalid usersecuritygrouplist: entries take account and group, not "
                                     f"{sorted(unknown)[0][:32]}")
        groups.append((entry.get("account"), entry.get("group")))
    return SG.RuleSpec(protocol=args.opt_str("protocol"), start_port=args.opt_int("startport"),
                       end_port=args.opt_int("endport"), icmp_type=args.opt_int("icmptype"),
                       icmp_code=args.opt_int("icmpcode"), cidrs=args.list("cidrlist"), groups=groups)


def _authorize(ctx: CallContext, args: Args, rule_type: str) -> Result:
    group = _group(ctx, args, "securitygroupid", "securitygroupname")
    rules = SG.authorize(ctx.db, ctx.user, group, rule_type, _rule_spec(args))
    view = group_view(ctx.db, group, only_rules=[r.id for r in rules])
    return submit_job(ctx, sg_sync.JOB_APPLY, {"group_ids": [group.id], "result": {"securitygroup": view}},
                      instance_type="SecurityGroup", instance_id=group.id)


@command("authorizeSecurityGroupIngress", "Authorizes a particular ingress rule for this security group",
         admin=False, isasync=True, params=list(RULE_PARAMS), response=GROUP_FIELDS)
def authorize_ingress(ctx: CallContext, args: Args) -> Result:
    return _authorize(ctx, args, SG.INGRESS)


@command("authorizeSecurityGroupEgress", "Authorizes a particular egress rule for this security group",
         admin=False, isasync=True, params=list(RULE_PARAMS), response=GROUP_FIELDS)
def authorize_egress(ctx: CallContext, args: Args) -> Result:
    return _authorize(ctx, args, SG.EGRESS)


def _revoke(ctx: CallContext, args: Args, rule_type: str) -> Result:
    rule = ctx.db.get(SecurityGroupRule, args.str("id"))
    if rule is None:
        raise errors.param_error(f"Invalid id: Unable to find security rule with id {args.str('id')}")
    group = ctx.get(SecurityGroup, "id", rule.security_group_id)
    if not ctx.may_act_for(group.account_id):
        raise errors.param_error(f"Invalid id: Unable to find security rule with id {rule.id}")
    SG.revoke(ctx.db, ctx.user, rule, rule_type)
    return submit_job(ctx, sg_sync.JOB_APPLY, {"group_ids": [group.id]}, instance_type="SecurityGroup",
                      instance_id=group.id)


@command("revokeSecurityGroupIngress", "Deletes a particular ingress rule from this security group", admin=False,
         isasync=True, params=[Param("id", "uuid", required=True, description="The ID of the ingress rule")])
def revoke_ingress(ctx: CallContext, args: Args) -> Result:
    return _revoke(ctx, args, SG.INGRESS)


@command("revokeSecurityGroupEgress", "Deletes a particular egress rule from this security group", admin=False,
         isasync=True, params=[Param("id", "uuid", required=True, description="The ID of the egress rule")])
def revoke_egress(ctx: CallContext, args: Args) -> Result:
    return _revoke(ctx, args, SG.EGRESS)
