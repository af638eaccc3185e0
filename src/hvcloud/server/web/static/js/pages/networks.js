// Guest networks: the list, creating an isolated network, restart and delete; a network's page with
// its VMs, its virtual router (operators), its public addresses and its egress firewall rules.

import * as api from "../api.js";
import {badge, clear, h, when} from "../dom.js";
import {go, link, route} from "../router.js";
import {confirmDialog, details, formDialog, header, listView, options, run, toast} from "../widgets.js";
import {hasService, mayChange, portsOrIcmp, ruleFields, ruleParams, scope, section, table, vmsOn} from "./netkit.js";

const RESTARTABLE = new Set(["Implemented", "Setup"]);

async function createNetwork() {
  return formDialog({
    title: "Create an isolated network", submitLabel: "Create",
    intro: "An isolated network belongs to your account; its virtual router starts with its first VM.",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "displaytext", label: "Description"},
      {name: "zoneid", label: "Zone", type: "select", required: true, options: options("listZones", "zone", {available: true})},
      {name: "networkofferingid", label: "Network offering", type: "select", required: true,
       options: options("listNetworkOfferings", "networkoffering", {guestiptype: "Isolated", state: "Enabled"},
                        (o) => o.displaytext || o.name)},
      {name: "gateway", label: "Gateway", placeholder: "10.1.1.1", help: "Optional, with the netmask: the default is the zone's guest CIDR"},
      {name: "netmask", label: "Netmask", placeholder: "255.255.255.0"},
    ],
    async onSubmit(v) {
      const answer = await api.call("createNetwork", v);
      return answer.network;
    },
  });
}

async function restart(network) {
  return formDialog({
    title: `Restart network ${network.name}`, submitLabel: "Restart",
    intro: "The router gets every DHCP entry, address and rule again.",
    fields: [{name: "cleanup", label: "Clean up: replace the virtual router", type: "checkbox"}],
    async onSubmit(v, {progress}) {
      await api.callAsync("restartNetwork", {id: network.id, cleanup: v.cleanup ? "true" : "false"},
                          () => progress("Restarting…"));
      return true;
    },
  }).then((done) => { if (done) toast(`Network ${network.name} restarted`, "ok"); return done; });
}

async function remove(network) {
  if (!await confirmDialog(`Delete network ${network.name}? Its router and addresses are released.`, "Delete")) return false;
  return run(`Delete ${network.name}`, (progress) => api.callAsync("deleteNetwork", {id: network.id}, progress),
             `Network ${network.name} deleted`);
}

function rowActions(network) {
  if (!mayChange(network)) return [];
  return [
    RESTARTABLE.has(network.state) && network.type !== "L2" ? {label: "Restart", run: restart} : null,
    {label: "Delete", danger: true, run: remove},
  ];
}

route("networks", {
  title: "Networks", section: "Network",
  async render(view) {
    view.append(header("Networks"));
    const box = h("div");
    view.append(box);
    // VM counts: one list of the caller's VMs, counted per network, fetched with each list load
    let counts = null;
    async function vmCounts() {
      const vms = await api.all("listVirtualMachines", "virtualmachine", scope({details: "min"}));
      const out = new Map();
      for (const vm of vms) for (const nic of vm.nic || []) out.set(nic.networkid, (out.get(nic.networkid) || 0) + 1);
      return out;
    }
    const columns = [
      {label: "Name", render: (n) => link("network", n.name, n.id)},
      {label: "CIDR", field: "cidr"},
      {label: "Type", field: "type"},
      {label: "State", render: (n) => badge(n.state)},
      {label: "Zone", field: "zonename"},
      {label: "Offering", render: (n) => n.networkofferingdisplaytext || n.networkofferingname || ""},
      {label: "VMs", render: (n) => {
        const cell = h("span", {}, "…");
        counts.then((m) => { cell.textContent = String(m.get(n.id) || 0); }, () => { cell.textContent = "–"; });
        return cell;
      }},
    ];
    if (api.isAdmin()) columns.splice(5, 0, {label: "Account", render: (n) => n.account || `${n.acltype} (${n.domain})`});
    listView(box, {
      command: "listNetworks", key: "network",
      params: () => { counts = vmCounts(); return scope(); },
      columns, actions: rowActions,
      toolbar: [{label: "Create network", run: async () => { const n = await createNetwork(); if (n) go("network", n.id); }}],
      empty: "No networks yet. Create an isolated network, then deploy VMs onto it.",
    });
  },
});

// ---------------------------------------------------------------- one network

async function egressSection(network, body) {
  const reload = async () => {
    clear(body).append(h("p", {class: "loading"}, "Loading…"));
    try {
      const rules = await api.all("listEgressFirewallRules", "firewallrule", scope({networkid: network.id}));
      const mine = mayChange(network);
      clear(body).append(
        mine ? h("div", {class: "toolbar"}, h("button", {type: "button", class: "primary", onclick: add}, "Add egress rule")) : null,
        table(rules, [
          {label: "Protocol", render: (r) => String(r.protocol).toUpperCase()},
          {label: "Ports / ICMP", render: portsOrIcmp},
          {label: "Source CIDRs", render: (r) => r.cidrlist || "the whole network"},
          {label: "Destination CIDRs", render: (r) => r.destcidrlist || "anywhere"},
          {label: "State", render: (r) => badge(r.state)},
        ], mine ? () => [{label: "Delete", danger: true, run: del}] : null,
        "No egress rules: the offering's default egress policy applies."));
    } catch (err) {
      clear(body).append(h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`));
    }
  };
  async function add() {
    const fields = [...ruleFields(["tcp", "udp", "icmp", "all"], "Source CIDRs", `Within ${network.cidr}; empty means the whole network`),
                    {name: "destcidrlist", label: "Destination CIDRs", help: "Comma-separated; empty means anywhere"}];
    const done = await formDialog({
      title: "Add an egress rule", submitLabel: "Add", fields,
      async onSubmit(v, {progress}) {
        const p = {networkid: network.id, ...ruleParams(v)};
        if (v.destcidrlist) p.destcidrlist = v.destcidrlist.split(/[\s,]+/).filter(Boolean).join(",");
        await api.callAsync("createEgressFirewallRule", p, () => progress("Applying…"));
        return true;
      },
    });
    if (done) reload();
  }
  async function del(rule) {
    if (!await confirmDialog("Delete this egress rule?", "Delete")) return;
    await run("Delete egress rule", (progress) => api.callAsync("deleteEgressFirewallRule", {id: rule.id}, progress));
    reload();
  }
  await reload();
}

async function vmsSection(network, body) {
  const vms = await vmsOn(network.id);
  clear(body).append(table(vms, [
    {label: "Name", render: (vm) => link("instance", vm.displayname || vm.name, vm.id)},
    {label: "Address", field: "netip"},
    {label: "State", render: (vm) => badge(vm.state)},
    {label: "Created", render: (vm) => when(vm.created)},
  ], null, "No VMs on this network."));
}

async function routerSection(network, body) {
  const {items} = await api.list("listRouters", "router", {networkid: network.id, listall: true});
  clear(body).append(table(items, [
    {label: "Name", field: "name"},
    {label: "State", render: (r) => badge(r.state)},
    {label: "Guest address", field: "guestipaddress"},
    {label: "Host", render: (r) => r.hostname || r.hostid || ""},
  ], null, "No router: the network gets one when its first VM starts."));
}

route("network", {
  title: "Network", section: "Network", nav: false,
  async render(view, id) {
    const {items} = await api.list("listNetworks", "network", scope({id}));
    const network = items[0];
    if (!network) {
      view.append(header("Network"), h("p", {class: "list-status error", role: "alert"}, "No such network, or it is not yours."));
      return;
    }
    const back = link("networks", "‹ Networks");
    const buttons = rowActions(network).filter(Boolean).map((a) =>
      h("button", {type: "button", class: a.danger ? "danger" : "", onclick: async () => {
        const done = await a.run(network);
        if (done && a.label === "Delete") go("networks");
        else if (done) go("network", network.id);
      }}, a.label));
    view.append(h("p", {}, back), header(`Network ${network.name}`, ...buttons), details([
      ["Name", network.name],
      ["Description", network.displaytext],
      ["State", badge(network.state)],
      ["Type", network.type],
      ["CIDR", network.cidr],
      ["Gateway", network.gateway],
      ["Netmask", network.netmask],
      ["Network domain", network.networkdomain],
      ["Zone", network.zonename],
      ["Offering", network.networkofferingdisplaytext || network.networkofferingname],
      ["Services", (network.service || []).map((s) => s.name).join(", ")],
      network.account ? ["Account", network.account] : ["Domain", network.domain],
      api.isAdmin() && network.vlan ? ["Segment", network.vlan] : null,
      ["Created", when(network.created)],
    ]));

    const vms = section("Instances");
    view.append(vms.el);
    vmsSection(network, vms.body).catch((err) => clear(vms.body).append(
      h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`)));

    if (api.isAdmin() && network.type !== "L2") {
      const router = section("Virtual router");
      view.append(router.el);
      routerSection(network, router.body).catch((err) => clear(router.body).append(
        h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`)));
    }

    if (network.type === "Isolated") {
      const ips = section("Public IP addresses");
      view.append(ips.el);
      const toolbar = mayChange(network) && hasService(network, "SourceNat")
        ? [{label: "Acquire public IP", run: () => run("Acquire a public IP address", (progress) =>
            api.callAsync("associateIpAddress", {networkid: network.id}, progress))}]
        : [];
      listView(ips.body, {
        command: "listPublicIpAddresses", key: "publicipaddress", search: false,
        params: () => scope({associatednetworkid: network.id}),
        columns: [
          {label: "Address", render: (ip) => link("publicip", ip.ipaddress, ip.id)},
          {label: "State", render: (ip) => badge(ip.state)},
          {label: "Source NAT", render: (ip) => (ip.issourcenat ? "Yes" : "No")},
          {label: "Static NAT", render: (ip) => (ip.isstaticnat ? `${ip.virtualmachinedisplayname || ip.virtualmachinename} (${ip.vmipaddress})` : "")},
        ],
        toolbar,
        empty: "No public addresses: the network gets its source NAT address when it is implemented.",
      });
    }

    if (network.type === "Isolated" && hasService(network, "Firewall")) {
      const egress = section("Egress firewall rules", "What VMs of this network may reach outside.");
      view.append(egress.el);
      egressSection(network, egress.body);
    }
  },
});
