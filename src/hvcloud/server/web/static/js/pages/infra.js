// The operator's infrastructure: zones (with their pods, clusters, hosts, primary storage and image
// stores), hosts, primary storage, image stores and virtual routers. Every page is admin-only.

import * as api from "../api.js";
import {bytes, h, when} from "../dom.js";
import {go, link, route} from "../router.js";
import {confirmDialog, details, formDialog, header, listView, options, run} from "../widgets.js";

const SECTION = "Infrastructure";

// ---------------------------------------------------------------- shared pieces

/** Tabs over a few panels; each panel renders when first shown. tabs: [{label, render(panel)}]. */
export function tabs(container, list) {
  const bar = h("div", {class: "tabs", role: "tablist"});
  const panels = h("div", {class: "tab-panels"});
  const buttons = [];
  list.forEach((tab, i) => {
    const panel = h("section", {role: "tabpanel", hidden: i !== 0, "aria-label": tab.label});
    const button = h("button", {type: "button", role: "tab", "aria-selected": i === 0 ? "true" : "false",
                                onclick: () => select(i)}, tab.label);
    button.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowRight") { select((i + 1) % list.length); buttons[(i + 1) % list.length].focus(); }
      if (ev.key === "ArrowLeft") { select((i - 1 + list.length) % list.length); buttons[(i - 1 + list.length) % list.length].focus(); }
    });
    tab.panel = panel;
    buttons.push(button);
    bar.append(button);
    panels.append(panel);
  });
  function select(i) {
    list.forEach((tab, j) => {
      tab.panel.hidden = j !== i;
      buttons[j].setAttribute("aria-selected", j === i ? "true" : "false");
    });
    if (!list[i].done) { list[i].done = true; list[i].render(list[i].panel); }
  }
  container.append(bar, panels);
  select(0);
  return {select};
}

const isEnabled = (row) => String(row.allocationstate || "").toLowerCase() === "enabled";

/** "used of total (n%)" for two numbers and a formatter. */
function usage(used, total, fmt = String) {
  const u = Number(used) || 0;
  const t = Number(total) || 0;
  if (!t) return used === undefined && total === undefined ? "" : `${fmt(u)} of ${fmt(t)}`;
  return `${fmt(u)} of ${fmt(t)} (${((100 * u) / t).toFixed(0)}%)`;
}

const mhz = (n) => (Number(n) >= 1000 ? `${(Number(n) / 1000).toFixed(1)} GHz` : `${Number(n) || 0} MHz`);

function zonePicker(extra = {}) {
  return {name: "zoneid", label: "Zone", type: "select", required: true, options: options("listZones", "zone"), ...extra};
}
function podPicker(extra = {}) {
  return {name: "podid", label: "Pod", type: "select", required: true, dependsOn: ["zoneid"],
          options: async (v) => (v.zoneid ? (await api.all("listPods", "pod", {zoneid: v.zoneid})).map((p) => ({value: p.id, label: p.name})) : []),
          ...extra};
}
function clusterPicker(extra = {}) {
  return {name: "clusterid", label: "Cluster", type: "select", required: true, dependsOn: ["podid"],
          options: async (v) => (v.podid ? (await api.all("listClusters", "cluster", {podid: v.podid})).map((c) => ({value: c.id, label: `${c.name} (${c.hypervisortype})`})) : []),
          ...extra};
}
const hypervisors = async () => (await api.all("listHypervisors", "hypervisor")).map((x) => x.name);

// ---------------------------------------------------------------- adding things

export async function addZone() {
  return formDialog({
    title: "Add a zone", submitLabel: "Add zone",
    intro: "A new zone starts Disabled: add its pods, clusters, hosts and storage, then enable it.",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "networktype", label: "Network type", type: "select", required: true, options: ["Advanced", "Basic"], value: "Advanced"},
      {name: "dns1", label: "Public DNS", required: true, placeholder: "8.8.8.8", help: "For the guests"},
      {name: "dns2", label: "Second public DNS"},
      {name: "internaldns1", label: "Internal DNS", required: true, placeholder: "10.0.0.1", help: "For the system VMs and hosts"},
      {name: "guestcidraddress", label: "Guest CIDR", placeholder: "10.1.1.0/24", help: "Default CIDR of the guest networks (Advanced zones)"},
      {name: "domain", label: "Network domain", placeholder: "cloud.internal"},
    ],
    onSubmit: async (v) => {
      const answer = await api.call("createZone", v);
      return answer.zone;
    },
  });
}

export async function addPod(zoneid) {
  return formDialog({
    title: "Add a pod", submitLabel: "Add pod",
    fields: [
      zonePicker({value: zoneid}),
      {name: "name", label: "Name", required: true},
      {name: "gateway", label: "Gateway", placeholder: "10.1.0.1"},
      {name: "netmask", label: "Netmask", placeholder: "255.255.255.0"},
      {name: "startip", label: "Start of the management IP range"},
      {name: "endip", label: "End of the management IP range"},
    ],
    onSubmit: async (v) => (await api.call("createPod", v)).pod,
  });
}

export async function addCluster(zoneid) {
  return formDialog({
    title: "Add a cluster", submitLabel: "Add cluster",
    fields: [
      zonePicker({value: zoneid}),
      podPicker(),
      {name: "clustername", label: "Name", required: true},
      {name: "hypervisor", label: "Hypervisor", type: "select", required: true, options: hypervisors},
      {name: "cpuovercommitratio", label: "CPU overcommit ratio", type: "number", min: 0.1, max: 100, step: 0.1, value: "1"},
      {name: "memoryovercommitratio", label: "Memory overcommit ratio", type: "number", min: 0.1, max: 100, step: 0.1, value: "1"},
    ],
    onSubmit: async (v) => (await api.call("addCluster", {...v, clustertype: "CloudManaged"})).cluster,
  });
}

export async function addHost(zoneid) {
  return formDialog({
    title: "Add a host", submitLabel: "Add host",
    intro: "The server connects to the host's agent at the URL and signs in with the agent's credentials " +
           "(HVCLOUD_AGENT_USERNAME / HVCLOUD_AGENT_PASSWORD on the host).",
    fields: [
      zonePicker({value: zoneid}),
      podPicker(),
      clusterPicker(),
      {name: "url", label: "Agent URL", required: true, placeholder: "http://10.0.0.21:8250"},
      {name: "username", label: "Agent username", required: true, autocomplete: "off"},
      {name: "password", label: "Agent password", type: "password", required: true, autocomplete: "new-password"},
      {name: "hosttags", label: "Host tags", help: "Comma separated (optional)"},
    ],
    onSubmit: async (v, {progress}) => {
      const clusters = await api.all("listClusters", "cluster", {id: v.clusterid});
      if (!clusters.length) throw new Error("The cluster is gone; pick another");
      progress("Connecting to the agent…");
      const answer = await api.call("addHost", {...v, hypervisor: clusters[0].hypervisortype});
      return (answer.host || [])[0];
    },
  });
}

export async function addPrimaryStorage(zoneid) {
  return formDialog({
    title: "Add primary storage", submitLabel: "Add storage",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "scope", label: "Scope", type: "select", required: true,
       options: [{value: "cluster", label: "Cluster"}, {value: "zone", label: "Zone"}], value: "cluster"},
      zonePicker({value: zoneid}),
      podPicker({showIf: (v) => v.scope === "cluster"}),
      clusterPicker({showIf: (v) => v.scope === "cluster"}),
      {name: "hypervisor", label: "Hypervisor", type: "select", required: true, options: hypervisors,
       showIf: (v) => v.scope === "zone", help: "The hosts of the zone that use this storage"},
      {name: "url", label: "URL", required: true, placeholder: "file:///var/lib/hvcloud/primary",
       help: "file:///path, nfs://server/export, smb://server/share or sharedmountpoint:///path"},
      {name: "tags", label: "Storage tags"},
    ],
    onSubmit: async (v) => (await api.call("createStoragePool", v)).storagepool,
  });
}

export async function addImageStore(zoneid) {
  return formDialog({
    title: "Add an image store", submitLabel: "Add image store",
    intro: "Secondary storage for templates, ISOs and snapshots. (S3 stores: the addImageStoreS3 API.)",
    fields: [
      {name: "provider", label: "Provider", type: "select", required: true, value: "NFS",
       options: async () => (await api.all("listStorageProviders", "dataStoreProvider", {type: "image"}))
         .map((p) => p.name).filter((n) => n !== "S3")},
      {name: "name", label: "Name", required: true},
      zonePicker({value: zoneid}),
      {name: "url", label: "URL", required: true, placeholder: "nfs://server/export or file:///path",
       help: "NFS: nfs:// or file://; SMB: smb:// or cifs://"},
    ],
    onSubmit: async (v) => (await api.call("addImageStore", v)).imagestore,
  });
}

async function setZoneState(zone, state) {
  return run(`${state === "Enabled" ? "Enabling" : "Disabling"} zone ${zone.name}`,
             () => api.call("updateZone", {id: zone.id, allocationstate: state}));
}

async function deleteThing(what, row, command) {
  if (!await confirmDialog(`Delete ${what} ${row.name}? This cannot be undone.`, "Delete")) return;
  await run(`Deleting ${what} ${row.name}`, () => api.call(command, {id: row.id}));
}

// ---------------------------------------------------------------- lists used on several pages

function podList(container, zoneid) {
  return listView(container, {
    command: "listPods", key: "pod", params: () => ({zoneid}), empty: "No pods in this zone yet.",
    columns: [{label: "Name", field: "name"}, {label: "Gateway", field: "gateway"}, {label: "Netmask", field: "netmask"},
              {label: "Management IPs", render: (p) => (p.startip ? `${p.startip} – ${p.endip || ""}` : "")},
              {label: "Allocation", render: (p) => badgeOf(p.allocationstate)}],
    actions: (p) => [
      {label: isEnabled(p) ? "Disable" : "Enable", run: () => run(`Updating pod ${p.name}`,
        () => api.call("updatePod", {id: p.id, allocationstate: isEnabled(p) ? "Disabled" : "Enabled"}))},
      {label: "Delete", danger: true, run: () => deleteThing("pod", p, "deletePod")},
    ],
  });
}

function clusterList(container, zoneid) {
  return listView(container, {
    command: "listClusters", key: "cluster", params: () => ({zoneid}), empty: "No clusters in this zone yet.",
    columns: [{label: "Name", field: "name"}, {label: "Pod", field: "podname"}, {label: "Hypervisor", field: "hypervisortype"},
              {label: "Type", field: "clustertype"}, {label: "Allocation", render: (c) => badgeOf(c.allocationstate)}],
    actions: (c) => [
      {label: isEnabled(c) ? "Disable" : "Enable", run: () => run(`Updating cluster ${c.name}`,
        () => api.call("updateCluster", {id: c.id, allocationstate: isEnabled(c) ? "Disabled" : "Enabled"}))},
      {label: "Delete", danger: true, run: () => deleteThing("cluster", c, "deleteCluster")},
    ],
  });
}

function badgeOf(state) {
  const span = h("span", {class: `badge ${/^(enabled|up|running|ready)$/i.test(state || "") ? "good"
    : /^(disabled|down|alert|error|maintenance|disconnected|errorinmaintenance|stopped)$/i.test(state || "") ? "bad" : "neutral"}`}, state || "–");
  return span;
}

function hostActions(host) {
  const rs = String(host.resourcestate || "");
  const inMaint = /maintenance/i.test(rs);
  return [
    !inMaint && {label: "Maintenance", run: () => run(`Preparing ${host.name} for maintenance`,
      (progress) => api.callAsync("prepareHostForMaintenance", {id: host.id}, progress), `${host.name} is in maintenance`)},
    inMaint && {label: "End maintenance", run: () => run(`Ending maintenance of ${host.name}`,
      (progress) => api.callAsync("cancelHostMaintenance", {id: host.id}, progress), `${host.name} left maintenance`)},
    rs === "Enabled" && {label: "Disable", run: () => run(`Disabling ${host.name}`,
      () => api.call("updateHost", {id: host.id, allocationstate: "Disable"}))},
    rs === "Disabled" && {label: "Enable", run: () => run(`Enabling ${host.name}`,
      () => api.call("updateHost", {id: host.id, allocationstate: "Enable"}))},
    {label: "Reconnect", run: () => run(`Reconnecting ${host.name}`,
      (progress) => api.callAsync("reconnectHost", {id: host.id}, progress))},
    {label: "Delete", danger: true, run: () => deleteHost(host)},
  ];
}

async function deleteHost(host) {
  const maint = /^maintenance$/i.test(host.resourcestate || "");
  return formDialog({
    title: `Delete host ${host.name}`, submitLabel: "Delete host",
    intro: maint ? "The host is in maintenance; it leaves the cloud." :
      "The host is not in maintenance. Put it in maintenance first (its VMs move away), or force the deletion.",
    fields: maint ? [] : [{name: "forced", label: "Force the deletion (the host's VMs are not moved)", type: "checkbox"}],
    onSubmit: async (v) => {
      await api.call("deleteHost", {id: host.id, forced: v.forced ? "true" : undefined});
      return true;
    },
  }).then((done) => { if (done) go("hosts"); });
}

function hostList(container, params = {}) {
  return listView(container, {
    command: "listHosts", key: "host", params: () => params, refreshMs: 10000,
    empty: "No hosts yet. Add one with its agent's URL and credentials.",
    columns: [
      {label: "Name", render: (x) => link("host", x.name, x.id)},
      {label: "State", render: (x) => badgeOf(x.state)},
      {label: "Resource state", render: (x) => badgeOf(x.resourcestate)},
      {label: "IP address", field: "ipaddress"},
      {label: "Hypervisor", field: "hypervisor"},
      {label: "CPU allocated", render: (x) => (x.cpunumber ? `${x.cpuallocated || "0%"} of ${x.cpunumber} × ${mhz(x.cpuspeed)}` : "")},
      {label: "Memory allocated", render: (x) => (x.memorytotal ? usage(x.memoryallocated, x.memorytotal, bytes) : "")},
      {label: "Cluster", field: "clustername"},
    ],
    actions: hostActions,
  });
}

function poolList(container, params = {}) {
  return listView(container, {
    command: "listStoragePools", key: "storagepool", params: () => params,
    empty: "No primary storage yet.",
    columns: [
      {label: "Name", field: "name"}, {label: "State", render: (p) => badgeOf(p.state)},
      {label: "Scope", field: "scope"}, {label: "Type", field: "type"},
      {label: "Zone", field: "zonename"}, {label: "Cluster", field: "clustername"},
      {label: "Path", render: (p) => `${p.ipaddress ? p.ipaddress + ":" : ""}${p.path || ""}`},
      {label: "Used", render: (p) => usage(p.disksizeused, p.disksizetotal, bytes)},
      {label: "Allocated", render: (p) => usage(p.disksizeallocated, p.disksizetotal, bytes)},
    ],
    actions: (p) => [
      /maintenance/i.test(p.state || "")
        ? {label: "End maintenance", run: () => run(`Ending maintenance of ${p.name}`,
          (progress) => api.callAsync("cancelStorageMaintenance", {id: p.id}, progress))}
        : {label: "Maintenance", run: () => run(`Putting ${p.name} in maintenance`,
          (progress) => api.callAsync("enableStorageMaintenance", {id: p.id}, progress))},
      p.state === "Disabled"
        ? {label: "Enable", run: () => run(`Enabling ${p.name}`, () => api.call("updateStoragePool", {id: p.id, enabled: "true"}))}
        : p.state === "Up" && {label: "Disable", run: () => run(`Disabling ${p.name}`, () => api.call("updateStoragePool", {id: p.id, enabled: "false"}))},
      {label: "Delete", danger: true, run: () => deleteThing("primary storage", p, "deleteStoragePool")},
    ],
  });
}

function storeList(container, params = {}) {
  return listView(container, {
    command: "listImageStores", key: "imagestore", params: () => params,
    empty: "No image stores yet: templates and ISOs need one per zone.",
    columns: [
      {label: "Name", field: "name"}, {label: "Provider", field: "providername"},
      {label: "Protocol", field: "protocol"}, {label: "URL", field: "url"},
      {label: "Zone", render: (s) => s.zonename || (s.scope === "REGION" ? "Every zone" : "")},
      {label: "Used", render: (s) => usage(s.disksizeused, s.disksizetotal, bytes)},
    ],
    actions: (s) => [{label: "Delete", danger: true, run: () => deleteThing("image store", s, "deleteImageStore")}],
  });
}

// ---------------------------------------------------------------- zones

route("zones", {
  title: "Zones", section: SECTION, admin: true,
  render(view) {
    view.append(header("Zones"));
    const box = h("div");
    view.append(box);
    listView(box, {
      command: "listZones", key: "zone", empty: "No zones yet. Add one to start building the cloud.",
      toolbar: [{label: "Add zone", run: async () => { const z = await addZone(); if (z) go("zone", z.id); }}],
      columns: [
        {label: "Name", render: (z) => link("zone", z.name, z.id)},
        {label: "Network type", field: "networktype"},
        {label: "Allocation", render: (z) => badgeOf(z.allocationstate)},
        {label: "DNS", render: (z) => [z.dns1, z.dns2].filter(Boolean).join(", ")},
        {label: "Internal DNS", field: "internaldns1"},
        {label: "Guest CIDR", field: "guestcidraddress"},
      ],
      actions: (z) => [
        {label: isEnabled(z) ? "Disable" : "Enable", run: () => setZoneState(z, isEnabled(z) ? "Disabled" : "Enabled")},
        {label: "Delete", danger: true, run: () => deleteThing("zone", z, "deleteZone")},
      ],
    });
  },
});

route("zone", {
  title: "Zone", section: SECTION, admin: true, nav: false,
  async render(view, id) {
    const zones = id ? (await api.list("listZones", "zone", {id})).items : [];
    if (!zones.length) {
      view.append(header("Zone"), h("p", {class: "list-status empty"}, "There is no such zone. "), link("zones", "All zones"));
      return;
    }
    const zone = zones[0];
    document.title = `Zone ${zone.name} · hvcloud`;
    const again = () => go("zone", zone.id);
    const refresh = async (fn) => { if (await fn()) again(); };
    view.append(
      h("p", {class: "crumbs"}, link("zones", "Zones"), " › ", zone.name),
      header(`Zone ${zone.name}`,
        h("button", {type: "button", class: "primary", onclick: () => refresh(() => setZoneState(zone, isEnabled(zone) ? "Disabled" : "Enabled"))},
          isEnabled(zone) ? "Disable zone" : "Enable zone")),
      details([["Allocation", badgeOf(zone.allocationstate)], ["Network type", zone.networktype],
               ["DNS", [zone.dns1, zone.dns2].filter(Boolean).join(", ")],
               ["Internal DNS", [zone.internaldns1, zone.internaldns2].filter(Boolean).join(", ")],
               ["Guest CIDR", zone.guestcidraddress], ["Network domain", zone.domain],
               ["Local storage", zone.localstorageenabled ? "enabled" : "disabled"], ["ID", zone.id]]),
      h("div", {class: "toolbar add-buttons", role: "group", "aria-label": "Add to this zone"},
        h("button", {type: "button", onclick: () => refresh(() => addPod(zone.id))}, "Add pod"),
        h("button", {type: "button", onclick: () => refresh(() => addCluster(zone.id))}, "Add cluster"),
        h("button", {type: "button", onclick: () => refresh(() => addHost(zone.id))}, "Add host"),
        h("button", {type: "button", onclick: () => refresh(() => addPrimaryStorage(zone.id))}, "Add primary storage"),
        h("button", {type: "button", onclick: () => refresh(() => addImageStore(zone.id))}, "Add image store")));
    tabs(view, [
      {label: "Pods", render: (p) => podList(p, zone.id)},
      {label: "Clusters", render: (p) => clusterList(p, zone.id)},
      {label: "Hosts", render: (p) => hostList(p, {zoneid: zone.id})},
      {label: "Primary storage", render: (p) => poolList(p, {zoneid: zone.id})},
      {label: "Image stores", render: (p) => storeList(p, {zoneid: zone.id})},
    ]);
  },
});

// ---------------------------------------------------------------- hosts

route("hosts", {
  title: "Hosts", section: SECTION, admin: true,
  render(view) {
    view.append(header("Hosts", h("button", {type: "button", class: "primary", onclick: async () => {
      if (await addHost()) go("hosts");
    }}, "Add host")));
    hostList(view.appendChild(h("div")));
  },
});

route("host", {
  title: "Host", section: SECTION, admin: true, nav: false,
  async render(view, id) {
    const found = id ? (await api.list("listHosts", "host", {id})).items : [];
    if (!found.length) {
      view.append(header("Host"), h("p", {class: "list-status empty"}, "There is no such host. "), link("hosts", "All hosts"));
      return;
    }
    const host = found[0];
    document.title = `Host ${host.name} · hvcloud`;
    const buttons = hostActions(host).filter(Boolean).map((a) => h("button", {
      type: "button", class: a.danger ? "danger" : "",
      onclick: async () => { await a.run(host); if (a.label !== "Delete") go("host", host.id); }}, a.label));
    view.append(h("p", {class: "crumbs"}, link("hosts", "Hosts"), " › ", host.name),
                header(`Host ${host.name}`, buttons));
    const known = {state: badgeOf(host.state), resourcestate: badgeOf(host.resourcestate),
                   memorytotal: host.memorytotal !== undefined ? bytes(host.memorytotal) : undefined,
                   memoryallocated: host.memoryallocated !== undefined ? bytes(host.memoryallocated) : undefined,
                   memoryused: host.memoryused !== undefined ? bytes(host.memoryused) : undefined,
                   cpuspeed: host.cpuspeed !== undefined ? mhz(host.cpuspeed) : undefined,
                   created: when(host.created), lastpinged: when(host.lastpinged), disconnected: when(host.disconnected)};
    const rows = Object.keys(host).sort().filter((k) => typeof host[k] !== "object")
      .map((k) => [k, known[k] !== undefined ? known[k] : String(host[k])]);
    view.append(details(rows));
  },
});

// ---------------------------------------------------------------- storage

route("storage", {
  title: "Primary storage", section: SECTION, admin: true,
  render(view) {
    view.append(header("Primary storage", h("button", {type: "button", class: "primary", onclick: async () => {
      if (await addPrimaryStorage()) go("storage");
    }}, "Add primary storage")));
    poolList(view.appendChild(h("div")));
  },
});

route("imagestores", {
  title: "Image stores", section: SECTION, admin: true,
  render(view) {
    view.append(header("Image stores", h("button", {type: "button", class: "primary", onclick: async () => {
      if (await addImageStore()) go("imagestores");
    }}, "Add image store")));
    storeList(view.appendChild(h("div")));
  },
});

// ---------------------------------------------------------------- system services: routers

route("routers", {
  title: "Virtual routers", section: SECTION, admin: true,
  render(view) {
    view.append(header("Virtual routers"),
      h("p", {class: "intro"}, "The system services hvcloud runs as VMs are the virtual routers of guest networks. " +
        "Console proxies run as processes beside the management server, not as VMs, and the API has no command " +
        "listing them, so they do not appear here."));
    const box = view.appendChild(h("div"));
    listView(box, {
      command: "listRouters", key: "router", params: () => ({listall: "true"}), refreshMs: 10000,
      empty: "No virtual routers: they start with the first VM of an isolated network.",
      columns: [
        {label: "Name", field: "name"}, {label: "State", render: (r) => badgeOf(r.state)},
        {label: "Network", field: "guestnetworkname"}, {label: "Account", field: "account"},
        {label: "Host", field: "hostname"}, {label: "Guest IP", field: "guestipaddress"},
        {label: "Public IP", field: "publicip"}, {label: "Zone", field: "zonename"},
      ],
      actions: (r) => [
        r.state === "Stopped" && {label: "Start", run: () => run(`Starting ${r.name}`, (p) => api.callAsync("startRouter", {id: r.id}, p))},
        r.state === "Running" && {label: "Stop", run: () => run(`Stopping ${r.name}`, (p) => api.callAsync("stopRouter", {id: r.id}, p))},
        r.state === "Running" && {label: "Reboot", run: () => run(`Rebooting ${r.name}`, (p) => api.callAsync("rebootRouter", {id: r.id}, p))},
        {label: "Destroy", danger: true, run: async () => {
          if (!await confirmDialog(`Destroy router ${r.name}? The network's next start creates a new one.`, "Destroy")) return;
          await run(`Destroying ${r.name}`, (p) => api.callAsync("destroyRouter", {id: r.id}, p));
        }},
      ],
    });
  },
});

