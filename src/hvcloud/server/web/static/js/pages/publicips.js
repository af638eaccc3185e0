// Public IP addresses: the list, acquiring and releasing; an address's page with static NAT, port
// forwards, ingress firewall rules and load balancers (with their member VMs).

import * as api from "../api.js";
import {badge, clear, h} from "../dom.js";
import {go, link, route} from "../router.js";
import {confirmDialog, details, formDialog, header, listView, run, toast} from "../widgets.js";
import {hasService, mayChange, ports, portsOrIcmp, ruleFields, ruleParams, scope, section, vmOptions,
        yesNo} from "./netkit.js";

const ALGORITHMS = [{value: "roundrobin", label: "Round robin"}, {value: "leastconn", label: "Least connections"},
                    {value: "source", label: "Source address"}];

function cidrs(text) {
  return text ? text.split(/[\s,]+/).filter(Boolean).join(",") : undefined;
}

async function acquireOptions() {
  const networks = await api.all("listNetworks", "network", scope({type: "Isolated"}));
  return networks.filter((n) => mayChange(n) && hasService(n, "SourceNat"))
    .map((n) => ({value: n.id, label: `${n.name} (${n.cidr || n.zonename})`}));
}

async function acquire(networkid) {
  return formDialog({
    title: "Acquire a public IP address", submitLabel: "Acquire",
    intro: "The next free address of the zone's public ranges, held for one of your isolated networks.",
    fields: [{name: "networkid", label: "Network", type: "select", required: true, value: networkid, options: acquireOptions}],
    async onSubmit(v, {progress}) {
      const result = await api.callAsync("associateIpAddress", {networkid: v.networkid}, () => progress("Acquiring…"));
      const ip = result.ipaddress || {};
      toast(`Acquired ${ip.ipaddress || "an address"}`, "ok");
      return ip;
    },
  });
}

async function release(ip) {
  if (!await confirmDialog(`Release ${ip.ipaddress}? Its rules go with it.`, "Release")) return false;
  return run(`Release ${ip.ipaddress}`, (progress) => api.callAsync("disassociateIpAddress", {id: ip.id}, progress),
             `${ip.ipaddress} released`);
}

function ipActions(ip) {
  return [ip.issourcenat || ip.state !== "Allocated" ? null : {label: "Release", danger: true, run: release}];
}

function staticNatText(ip) {
  return ip.isstaticnat ? `${ip.virtualmachinedisplayname || ip.virtualmachinename || ip.virtualmachineid} (${ip.vmipaddress || ""})` : "";
}

route("publicips", {
  title: "Public IP addresses", section: "Network",
  async render(view) {
    view.append(header("Public IP addresses"));
    const box = h("div");
    view.append(box);
    const columns = [
      {label: "Address", render: (ip) => link("publicip", ip.ipaddress, ip.id)},
      {label: "State", render: (ip) => badge(ip.state)},
      {label: "Network", render: (ip) => (ip.associatednetworkid ? link("network", ip.associatednetworkname || ip.associatednetworkid, ip.associatednetworkid) : "")},
      {label: "Static NAT", render: staticNatText},
      {label: "Source NAT", render: (ip) => yesNo(ip.issourcenat)},
      {label: "Zone", field: "zonename"},
    ];
    if (api.isAdmin()) columns.push({label: "Account", field: "account"});
    listView(box, {
      command: "listPublicIpAddresses", key: "publicipaddress", params: () => scope(),
      columns, actions: ipActions,
      toolbar: [{label: "Acquire public IP", run: () => acquire()}],
      empty: "No public addresses. Your isolated networks get a source NAT address when their first VM starts; acquire more here.",
    });
  },
});

// ---------------------------------------------------------------- one address

function errorIn(body, err) {
  clear(body).append(h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`));
}

function staticNat(ip, network, body, redraw) {
  if (ip.issourcenat) {
    body.append(h("p", {class: "net-note"}, "This is the network's source NAT address: VMs reach out through it; static NAT is not possible on it."));
    return;
  }
  if (ip.isstaticnat) {
    body.append(details([["Static NAT to", staticNatText(ip)]]),
      h("div", {class: "toolbar"}, h("button", {type: "button", class: "danger", onclick: async () => {
        if (!await confirmDialog(`Disable static NAT of ${ip.ipaddress}?`, "Disable")) return;
        if (await run("Disable static NAT", (progress) => api.callAsync("disableStaticNat", {ipaddressid: ip.id}, progress))) redraw();
      }}, "Disable static NAT")));
    return;
  }
  body.append(h("p", {class: "net-note"}, "Static NAT sends everything for this address to one VM (and that VM's traffic out from it). An address with port forwards or load balancers cannot have it."),
    h("div", {class: "toolbar"}, h("button", {type: "button", onclick: async () => {
      const done = await formDialog({
        title: `Enable static NAT on ${ip.ipaddress}`, submitLabel: "Enable",
        fields: [{name: "virtualmachineid", label: "VM", type: "select", required: true, options: vmOptions(network.id)}],
        async onSubmit(v) {
          await api.call("enableStaticNat", {ipaddressid: ip.id, virtualmachineid: v.virtualmachineid, networkid: network.id});
          return true;
        },
      });
      if (done) { toast(`Static NAT enabled on ${ip.ipaddress}`, "ok"); redraw(); }
    }}, "Enable static NAT")));
}

function portForwards(ip, network, body) {
  let view = null;
  async function add() {
    return formDialog({
      title: `Add a port forward on ${ip.ipaddress}`, submitLabel: "Add",
      fields: [
        {name: "protocol", label: "Protocol", type: "select", required: true, value: "tcp",
         options: [{value: "tcp", label: "TCP"}, {value: "udp", label: "UDP"}]},
        {name: "publicport", label: "Public start port", type: "number", min: 1, max: 65535, required: true},
        {name: "publicendport", label: "Public end port", type: "number", min: 1, max: 65535, help: "Empty: the start port"},
        {name: "privateport", label: "Private start port", type: "number", min: 1, max: 65535, required: true},
        {name: "privateendport", label: "Private end port", type: "number", min: 1, max: 65535,
         help: "Empty: the private start port plus the public range's length"},
        {name: "virtualmachineid", label: "VM", type: "select", required: true, options: vmOptions(network.id)},
        {name: "cidrlist", label: "Source CIDRs", help: "Comma-separated; empty means 0.0.0.0/0"},
        {name: "openfirewall", label: "Open the firewall for these ports", type: "checkbox", value: true},
      ],
      async onSubmit(v, {progress}) {
        const span = v.publicendport ? Number(v.publicendport) - Number(v.publicport) : 0;
        await api.callAsync("createPortForwardingRule", {
          ipaddressid: ip.id, protocol: v.protocol, publicport: v.publicport,
          publicendport: v.publicendport || v.publicport, privateport: v.privateport,
          privateendport: v.privateendport || Number(v.privateport) + span, virtualmachineid: v.virtualmachineid,
          networkid: network.id, cidrlist: cidrs(v.cidrlist), openfirewall: v.openfirewall ? "true" : "false",
        }, () => progress("Applying to the router…"));
        return true;
      },
    });
  }
  async function del(rule) {
    if (!await confirmDialog(`Delete the forward of ${rule.protocol} ${ports(rule.publicport, rule.publicendport)}?`, "Delete")) return;
    await run("Delete port forward", (progress) => api.callAsync("deletePortForwardingRule", {id: rule.id}, progress));
    firewallReload();
  }
  view = listView(body, {
    command: "listPortForwardingRules", key: "portforwardingrule", search: false,
    params: () => scope({ipaddressid: ip.id}),
    columns: [
      {label: "Protocol", render: (r) => String(r.protocol).toUpperCase()},
      {label: "Public ports", render: (r) => ports(r.publicport, r.publicendport)},
      {label: "Private ports", render: (r) => ports(r.privateport, r.privateendport)},
      {label: "VM", render: (r) => `${r.virtualmachinedisplayname || r.virtualmachinename || ""} (${r.vmguestip || ""})`},
      {label: "Source CIDRs", render: (r) => r.cidrlist || "0.0.0.0/0"},
      {label: "State", render: (r) => badge(r.state)},
    ],
    actions: () => [{label: "Delete", danger: true, run: del}],
    toolbar: [{label: "Add port forward", run: async () => { if (await add()) { toast("Port forward added", "ok"); firewallReload(); } }}],
    empty: "No port forwards.",
  });
  return view;
}

// the firewall list is reloaded when forwards or load balancers open or close its ports
let firewallReload = () => {};

function firewall(ip, body) {
  async function add() {
    return formDialog({
      title: `Add a firewall rule on ${ip.ipaddress}`, submitLabel: "Add",
      intro: "Lets traffic from the source CIDRs reach this address on these ports.",
      fields: ruleFields(["tcp", "udp", "icmp"]),
      async onSubmit(v, {progress}) {
        await api.callAsync("createFirewallRule", {ipaddressid: ip.id, ...ruleParams(v)}, () => progress("Applying to the router…"));
        return true;
      },
    });
  }
  async function del(rule) {
    if (!await confirmDialog(`Delete the firewall rule ${String(rule.protocol).toUpperCase()} ${portsOrIcmp(rule)}?`, "Delete")) return;
    await run("Delete firewall rule", (progress) => api.callAsync("deleteFirewallRule", {id: rule.id}, progress));
  }
  const view = listView(body, {
    command: "listFirewallRules", key: "firewallrule", search: false,
    params: () => scope({ipaddressid: ip.id}),
    columns: [
      {label: "Protocol", render: (r) => String(r.protocol).toUpperCase()},
      {label: "Ports / ICMP", render: portsOrIcmp},
      {label: "Source CIDRs", render: (r) => r.cidrlist || "0.0.0.0/0"},
      {label: "State", render: (r) => badge(r.state)},
    ],
    actions: () => [{label: "Delete", danger: true, run: del}],
    toolbar: [{label: "Add firewall rule", run: async () => { if (await add()) toast("Firewall rule added", "ok"); }}],
    empty: "No firewall rules: nothing from outside reaches this address.",
  });
  firewallReload = () => view.reload();
}

function loadBalancers(ip, network, body, members) {
  async function add() {
    return formDialog({
      title: `Add a load balancer on ${ip.ipaddress}`, submitLabel: "Add",
      fields: [
        {name: "name", label: "Name", required: true},
        {name: "algorithm", label: "Algorithm", type: "select", required: true, value: "roundrobin", options: ALGORITHMS},
        {name: "protocol", label: "Protocol", type: "select", required: true, value: "tcp",
         options: [{value: "tcp", label: "TCP"}, {value: "udp", label: "UDP"}, {value: "tcp-proxy", label: "TCP (proxy protocol)"}]},
        {name: "publicport", label: "Public port", type: "number", min: 1, max: 65535, required: true},
        {name: "privateport", label: "Private port", type: "number", min: 1, max: 65535, required: true},
        {name: "cidrlist", label: "Source CIDRs", help: "Comma-separated; empty means 0.0.0.0/0"},
        {name: "openfirewall", label: "Open the firewall for the public port", type: "checkbox", value: true},
      ],
      async onSubmit(v, {progress}) {
        const result = await api.callAsync("createLoadBalancerRule", {
          publicipid: ip.id, networkid: network.id, name: v.name, algorithm: v.algorithm, protocol: v.protocol,
          publicport: v.publicport, privateport: v.privateport, cidrlist: cidrs(v.cidrlist),
          openfirewall: v.openfirewall ? "true" : "false"}, () => progress("Applying to the router…"));
        return result.loadbalancer || true;
      },
    });
  }
  async function del(rule) {
    if (!await confirmDialog(`Delete the load balancer ${rule.name}?`, "Delete")) return;
    await run(`Delete load balancer ${rule.name}`, (progress) => api.callAsync("deleteLoadBalancerRule", {id: rule.id}, progress));
    clear(members.body);
    members.el.hidden = true;
    firewallReload();
  }
  listView(body, {
    command: "listLoadBalancerRules", key: "loadbalancerrule", search: false,
    params: () => scope({publicipid: ip.id}),
    columns: [
      {label: "Name", field: "name"},
      {label: "Algorithm", field: "algorithm"},
      {label: "Protocol", render: (r) => String(r.protocol || "").toUpperCase()},
      {label: "Public port", field: "publicport"},
      {label: "Private port", field: "privateport"},
      {label: "Source CIDRs", render: (r) => r.cidrlist || "0.0.0.0/0"},
      {label: "State", render: (r) => badge(r.state)},
    ],
    actions: (r) => [{label: "Members", run: () => showMembers(r, network, members)},
                     {label: "Delete", danger: true, run: del}],
    toolbar: [{label: "Add load balancer", run: async () => {
      const lb = await add();
      if (lb) { toast("Load balancer added", "ok"); firewallReload(); if (lb.id) showMembers(lb, network, members); }
    }}],
    empty: "No load balancers.",
  });
}

function showMembers(lb, network, members) {
  members.el.hidden = false;
  members.el.querySelector("h2").textContent = `Members of load balancer ${lb.name}`;
  async function assign() {
    const done = await formDialog({
      title: `Add a VM to ${lb.name}`, submitLabel: "Add",
      fields: [{name: "vm", label: "VM", type: "select", required: true, options: async () => {
        const {items} = await api.list("listLoadBalancerRuleInstances", "loadbalancerruleinstance", {id: lb.id});
        const current = new Set(items.map((vm) => vm.id));
        return (await vmOptions(network.id)()).filter((o) => !current.has(o.value));
      }}],
      async onSubmit(v, {progress}) {
        await api.callAsync("assignToLoadBalancerRule", {id: lb.id, virtualmachineids: v.vm}, () => progress("Applying…"));
        return true;
      },
    });
    if (done) toast(`VM added to ${lb.name}`, "ok");
  }
  async function remove(vm) {
    if (!await confirmDialog(`Remove ${vm.displayname || vm.name} from ${lb.name}?`, "Remove")) return;
    await run("Remove from load balancer", (progress) =>
      api.callAsync("removeFromLoadBalancerRule", {id: lb.id, virtualmachineids: vm.id}, progress));
  }
  listView(members.body, {
    command: "listLoadBalancerRuleInstances", key: "loadbalancerruleinstance", search: false,
    params: () => ({id: lb.id}),
    columns: [
      {label: "VM", render: (vm) => vm.displayname || vm.name},
      {label: "Address", render: (vm) => ((vm.nic || []).find((n) => n.networkid === network.id) || {}).ipaddress || ""},
      {label: "State", render: (vm) => badge(vm.state)},
    ],
    actions: () => [{label: "Remove", danger: true, run: remove}],
    toolbar: [{label: "Add VM", run: assign}],
    empty: "No members yet: add the VMs that serve this load balancer.",
  });
  members.el.scrollIntoView({block: "nearest"});
}

async function draw(view, id) {
  clear(view);
  firewallReload = () => {};
  const {items} = await api.list("listPublicIpAddresses", "publicipaddress", scope({id}));
  const ip = items[0];
  if (!ip) {
    view.append(header("Public IP address"), h("p", {class: "list-status error", role: "alert"}, "No such address, or it is not yours."));
    return;
  }
  const network = ip.associatednetworkid
    ? (await api.list("listNetworks", "network", scope({id: ip.associatednetworkid}))).items[0] : null;
  const redraw = () => draw(view, id).catch((err) => errorIn(view, err));
  const buttons = ipActions(ip).filter(Boolean).map((a) => h("button", {type: "button", class: "danger", onclick: async () => {
    if (await a.run(ip)) go("publicips");
  }}, a.label));
  view.append(h("p", {}, link("publicips", "‹ Public IP addresses")), header(`Public IP ${ip.ipaddress}`, ...buttons), details([
    ["Address", ip.ipaddress],
    ["State", badge(ip.state)],
    ["Network", network ? link("network", network.name, network.id) : (ip.associatednetworkname || "")],
    ["Source NAT", yesNo(ip.issourcenat)],
    ["Static NAT", ip.isstaticnat ? staticNatText(ip) : "No"],
    ["Zone", ip.zonename],
    ["VLAN", ip.vlanname],
    api.isAdmin() ? ["Account", `${ip.account || ""} (${ip.domain || ""})`] : null,
  ]));
  if (!network || ip.state !== "Allocated") {
    view.append(h("p", {class: "net-note"}, "Rules can be added once the address is allocated to a network."));
    return;
  }
  if (hasService(network, "StaticNat")) {
    const s = section("Static NAT");
    view.append(s.el);
    staticNat(ip, network, s.body, redraw);
  }
  if (hasService(network, "Firewall")) {
    const fw = section("Firewall rules", "Ingress rules of this address: what may reach it from outside.");
    view.append(fw.el);
    firewall(ip, fw.body);
  }
  if (ip.isstaticnat) {
    view.append(h("p", {class: "net-note"}, "Port forwards and load balancers cannot be added on a static NAT address."));
  } else {
    if (hasService(network, "PortForwarding")) {
      const pf = section("Port forwards", "Public ports of this address sent on to a VM's ports.");
      view.append(pf.el);
      portForwards(ip, network, pf.body);
    }
    if (hasService(network, "Lb")) {
      const lb = section("Load balancers", "A public port spread over member VMs' private port.");
      const members = section("Members");
      members.el.hidden = true;
      view.append(lb.el, members.el);
      loadBalancers(ip, network, lb.body, members);
    }
  }
}

route("publicip", {
  title: "Public IP address", section: "Network", nav: false,
  render: draw,
});
