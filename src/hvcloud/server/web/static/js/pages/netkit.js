// Shared pieces of the Network pages (networks, public IP addresses, security groups): list
// parameters by role, a network's VMs, a titled section, a small table of rows already at hand,
// and the rule fields (protocol, ports, ICMP, CIDRs) the rule dialogs share.

import * as api from "../api.js";
import {h} from "../dom.js";

/** Admins list everyone's objects (listall); users always see only their own anyway. */
export function scope(params = {}) {
  return api.isAdmin() ? {...params, listall: true} : params;
}

/** Is this network one the caller may change (restart, delete, acquire addresses for)? */
export function mayChange(network) {
  if (api.isAdmin()) return true;
  const u = api.user();
  return network.acltype === "Account" && (!network.account || network.account === u.account);
}

/** Does the network's offering provide `service` (Firewall, PortForwarding, Lb, StaticNat, SourceNat …)? */
export function hasService(network, service) {
  return (network.service || []).some((s) => s.name === service);
}

/** The VMs with a NIC on `networkId`, each with that NIC's address as `netip`. */
export async function vmsOn(networkId) {
  const vms = await api.all("listVirtualMachines", "virtualmachine", scope({details: "min"}));
  const out = [];
  for (const vm of vms) {
    const nic = (vm.nic || []).find((n) => n.networkid === networkId);
    if (nic) out.push({...vm, netip: nic.ipaddress || ""});
  }
  return out;
}

/** Options of a VM picker: the VMs of a network that rules may point at. */
export function vmOptions(networkId) {
  return async () => (await vmsOn(networkId))
    .filter((vm) => !["Destroyed", "Expunging", "Error"].includes(vm.state))
    .map((vm) => ({value: vm.id, label: `${vm.displayname || vm.name} (${vm.netip})`}));
}

/** A titled part of a detail page; returns {el, body}. */
export function section(title, intro) {
  const body = h("div", {class: "net-section-body"});
  const el = h("section", {class: "net-section", "aria-label": title}, h("h2", {}, title),
               intro ? h("p", {class: "net-note"}, intro) : null, body);
  return {el, body};
}

/** A table of rows already loaded: columns [{label, field | render}], actions(row) [{label, run, danger}]. */
export function table(rows, columns, actions, empty) {
  if (!rows.length) return h("p", {class: "list-status empty"}, empty || "Nothing here yet.");
  const head = h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c.label)),
                 actions ? h("th", {scope: "col"}, h("span", {class: "sr"}, "Actions")) : null);
  const body = h("tbody", {}, rows.map((row) => h("tr", {dataset: {id: row.id || row.ruleid || ""}},
    columns.map((c) => h("td", {"data-label": c.label}, c.render ? c.render(row) : String(row[c.field] ?? ""))),
    actions ? h("td", {class: "actions"}, actions(row).filter(Boolean).map((a) =>
      h("button", {type: "button", class: a.danger ? "small danger" : "small", onclick: () => a.run(row)}, a.label)))
      : null)));
  return h("table", {class: "list"}, h("thead", {}, head), body);
}

/** "80", "8000-8100", or "" for rules without ports. */
export function ports(start, end) {
  if (start === undefined || start === null || start === "") return "";
  return String(start) === String(end ?? start) ? String(start) : `${start}-${end}`;
}

/** A rule's ports or ICMP type/code as one text. */
export function portsOrIcmp(rule) {
  if (String(rule.protocol).toLowerCase() === "icmp") {
    return `type ${rule.icmptype ?? -1}, code ${rule.icmpcode ?? -1}`;
  }
  return ports(rule.startport, rule.endport) || "all";
}

export const yesNo = (value) => (value === true || value === "true" ? "Yes" : "No");

/** The fields of a firewall-like rule: protocol, ports, ICMP type and code, and (optionally) CIDRs. */
export function ruleFields(protocols, cidrLabel = "Source CIDRs", cidrHelp = "Comma-separated; empty means 0.0.0.0/0") {
  const fields = [
    {name: "protocol", label: "Protocol", type: "select", required: true, value: protocols[0],
     options: protocols.map((p) => ({value: p, label: p.toUpperCase()}))},
    {name: "startport", label: "Start port", type: "number", min: 0, max: 65535,
     help: "TCP and UDP only"},
    {name: "endport", label: "End port", type: "number", min: 0, max: 65535,
     help: "Empty: the start port"},
    {name: "icmptype", label: "ICMP type", type: "number", min: -1, max: 255, help: "ICMP only; -1 means any"},
    {name: "icmpcode", label: "ICMP code", type: "number", min: -1, max: 255, help: "ICMP only; -1 means any"},
  ];
  if (cidrLabel) fields.push({name: "cidrlist", label: cidrLabel, help: cidrHelp});
  return fields;
}

/** API parameters of the values ruleFields collected: ports only for tcp/udp, type/code only for icmp. */
export function ruleParams(v) {
  const p = {protocol: v.protocol};
  if (v.protocol === "icmp") {
    p.icmptype = v.icmptype === "" ? -1 : v.icmptype;
    p.icmpcode = v.icmpcode === "" ? -1 : v.icmpcode;
  } else if (v.protocol === "tcp" || v.protocol === "udp") {
    p.startport = v.startport;
    p.endport = v.endport === "" ? v.startport : v.endport;
  }
  if (v.cidrlist) p.cidrlist = v.cidrlist.split(/[\s,]+/).filter(Boolean).join(",");
  return p;
}
