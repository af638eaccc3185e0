// Security groups: the list, create and delete; a group's page with its ingress and egress rules
// (authorize and revoke: protocol, ports or ICMP, a CIDR list or other accounts' groups).

import * as api from "../api.js";
import {clear, h} from "../dom.js";
import {go, link, route} from "../router.js";
import {confirmDialog, details, formDialog, header, listView, run, toast} from "../widgets.js";
import {portsOrIcmp, ruleFields, ruleParams, scope, section, table} from "./netkit.js";

const DEFAULT = "default";

async function create() {
  return formDialog({
    title: "Create a security group", submitLabel: "Create",
    intro: "A new group has no ingress rules (nothing may reach its VMs) and no egress rules (they may go anywhere).",
    fields: [{name: "name", label: "Name", required: true}, {name: "description", label: "Description"}],
    async onSubmit(v) {
      return (await api.call("createSecurityGroup", v)).securitygroup;
    },
  });
}

async function remove(group) {
  if (!await confirmDialog(`Delete security group ${group.name}?`, "Delete")) return false;
  return run(`Delete ${group.name}`, async () => api.call("deleteSecurityGroup", {id: group.id}), `Security group ${group.name} deleted`);
}

function groupActions(group) {
  return [group.name === DEFAULT ? null : {label: "Delete", danger: true, run: remove}];
}

route("securitygroups", {
  title: "Security groups", section: "Network",
  async render(view) {
    view.append(header("Security groups"),
      h("p", {class: "net-note"}, "Security groups filter the traffic of VMs on security-group networks (Basic zones and shared networks with security groups)."));
    const box = h("div");
    view.append(box);
    const columns = [
      {label: "Name", render: (g) => link("securitygroup", g.name, g.id)},
      {label: "Description", field: "description"},
      {label: "Ingress rules", render: (g) => String((g.ingressrule || []).length)},
      {label: "Egress rules", render: (g) => String((g.egressrule || []).length)},
      {label: "VMs", render: (g) => String(g.virtualmachinecount ?? (g.virtualmachineids || []).length)},
    ];
    if (api.isAdmin()) columns.push({label: "Account", render: (g) => `${g.account} (${g.domain})`});
    listView(box, {
      command: "listSecurityGroups", key: "securitygroup", params: () => scope(),
      columns, actions: groupActions,
      toolbar: [{label: "Create security group", run: async () => { const g = await create(); if (g) go("securitygroup", g.id); }}],
      empty: "No security groups yet. Your account's group \"default\" appears once it is first used.",
    });
  },
});

// ---------------------------------------------------------------- one group

function source(rule) {
  if (rule.securitygroupname) return `group ${rule.securitygroupname} of ${rule.account}`;
  return rule.cidr || "";
}

async function authorize(group, kind) {
  const ingress = kind === "ingress";
  const fields = [
    ...ruleFields(["tcp", "udp", "icmp", "all"], ingress ? "Source CIDRs" : "Destination CIDRs",
                  "Comma-separated, e.g. 0.0.0.0/0; or name groups below"),
    {name: "account", label: ingress ? "Or: the account of a source group" : "Or: the account of a destination group",
     value: api.user().account, help: "With a group name: that account's VMs in the group"},
    {name: "group", label: "Group name"},
  ];
  return formDialog({
    title: `Add ${ingress ? "an ingress" : "an egress"} rule to ${group.name}`, submitLabel: "Add",
    intro: ingress ? "Allows traffic to the group's VMs." : "With any egress rule, the group's VMs may reach only what the rules allow.",
    fields,
    async onSubmit(v, {progress}) {
      const p = {securitygroupid: group.id, ...ruleParams(v)};
      if (v.group) {
        p["usersecuritygrouplist[0].account"] = v.account || api.user().account;
        p["usersecuritygrouplist[0].group"] = v.group;
      }
      if (!p.cidrlist && !v.group) throw new Error("Give CIDRs or a group name.");
      const command = ingress ? "authorizeSecurityGroupIngress" : "authorizeSecurityGroupEgress";
      await api.callAsync(command, p, () => progress("Sending the rules to the hosts…"));
      return true;
    },
  });
}

async function draw(view, id) {
  clear(view);
  const {items} = await api.list("listSecurityGroups", "securitygroup", scope({id}));
  const group = items[0];
  if (!group) {
    view.append(header("Security group"), h("p", {class: "list-status error", role: "alert"}, "No such security group, or it is not yours."));
    return;
  }
  const redraw = () => draw(view, id).catch((err) => clear(view).append(
    h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`)));
  const buttons = groupActions(group).filter(Boolean).map((a) => h("button", {type: "button", class: "danger", onclick: async () => {
    if (await a.run(group)) go("securitygroups");
  }}, a.label));
  view.append(h("p", {}, link("securitygroups", "‹ Security groups")), header(`Security group ${group.name}`, ...buttons), details([
    ["Name", group.name],
    ["Description", group.description],
    ["Account", `${group.account} (${group.domain})`],
    ["VMs", String(group.virtualmachinecount ?? (group.virtualmachineids || []).length)],
  ]));
  for (const kind of ["ingress", "egress"]) {
    const rules = group[`${kind}rule`] || [];
    const s = section(kind === "ingress" ? "Ingress rules" : "Egress rules",
      kind === "ingress" ? "What may reach the group's VMs; nothing else may."
        : "Where the group's VMs may go; with no egress rule, anywhere.");
    view.append(s.el);
    const revoke = async (rule) => {
      if (!await confirmDialog(`Revoke the ${kind} rule ${String(rule.protocol).toUpperCase()} ${portsOrIcmp(rule)} ${source(rule)}?`, "Revoke")) return;
      const command = kind === "ingress" ? "revokeSecurityGroupIngress" : "revokeSecurityGroupEgress";
      if (await run(`Revoke ${kind} rule`, (progress) => api.callAsync(command, {id: rule.ruleid}, progress))) redraw();
    };
    s.body.append(
      h("div", {class: "toolbar"}, h("button", {type: "button", class: "primary", onclick: async () => {
        if (await authorize(group, kind)) { toast(`${kind === "ingress" ? "Ingress" : "Egress"} rule added`, "ok"); redraw(); }
      }}, kind === "ingress" ? "Add ingress rule" : "Add egress rule")),
      table(rules, [
        {label: "Protocol", render: (r) => String(r.protocol).toUpperCase()},
        {label: "Ports / ICMP", render: portsOrIcmp},
        {label: kind === "ingress" ? "Source" : "Destination", render: source},
      ], () => [{label: "Revoke", danger: true, run: revoke}],
      kind === "ingress" ? "No ingress rules: nothing may reach the group's VMs." : "No egress rules: the group's VMs may go anywhere."));
  }
}

route("securitygroup", {
  title: "Security group", section: "Network", nav: false,
  render: draw,
});
