// Compute: the instances list (#/instances) and one instance's page (#/instance/<id>), with the
// actions a VM's state allows. Only the public API; admins see every account's instances.

import * as api from "../api.js";
import {append, badge, bytes, clear, h, when} from "../dom.js";
import {go, link, route} from "../router.js";
import {confirmDialog, details, formDialog, header, listView, modal, run, toast} from "../widgets.js";

const TRANSITIONAL = new Set(["Starting", "Stopping", "Migrating", "Expunging"]);

/** listall for admins only (a user sees their own account's instances either way). */
function scope() { return api.isAdmin() ? {listall: true} : {}; }

function addresses(vm) {
  return (vm.nic || []).map((n) => n.ipaddress).filter(Boolean).join(", ");
}

/** UTF-8 text → base64, as the API wants user data. */
export function toBase64(text) {
  const utf8 = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < utf8.length; i += 0x8000) binary += String.fromCharCode(...utf8.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(b64) {
  try {
    const binary = atob(b64);
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch { return ""; }
}

// ---------------------------------------------------------------- actions

async function start(vm) {
  return run(`Start ${vm.name}`, (p) => api.callAsync("startVirtualMachine", {id: vm.id}, p), `${vm.name} is running`);
}

async function stop(vm) {
  const values = await formDialog({
    title: `Stop ${vm.name}`, submitLabel: "Stop",
    intro: "The guest is asked to shut down. Force stop turns it off at once (unsaved data in the guest is lost).",
    fields: [{name: "forced", label: "Force stop", type: "checkbox"}],
    onSubmit: (v) => v,
  });
  if (!values) return null;
  return run(`Stop ${vm.name}`, (p) => api.callAsync("stopVirtualMachine", {id: vm.id, forced: values.forced || undefined}, p),
             `${vm.name} is stopped`);
}

async function reboot(vm) {
  if (!await confirmDialog(`Reboot ${vm.name}?`, "Reboot")) return null;
  return run(`Reboot ${vm.name}`, (p) => api.callAsync("rebootVirtualMachine", {id: vm.id}, p), `${vm.name} rebooted`);
}

async function destroy(vm) {
  const values = await formDialog({
    title: `Destroy ${vm.name}`, submitLabel: "Destroy",
    intro: api.isAdmin()
      ? "The instance is stopped and destroyed; an operator can recover it until it is expunged."
      : "The instance is stopped and destroyed; its disks are removed when it is expunged.",
    fields: [{name: "expunge", label: "Expunge at once (its disks are deleted; it cannot be recovered)", type: "checkbox"}],
    onSubmit: (v) => v,
  });
  if (!values) return null;
  return run(`Destroy ${vm.name}`, (p) => api.callAsync("destroyVirtualMachine", {id: vm.id, expunge: values.expunge || undefined}, p),
             `${vm.name} destroyed`);
}

async function recover(vm) {
  return run(`Recover ${vm.name}`, () => api.call("recoverVirtualMachine", {id: vm.id}), `${vm.name} recovered (Stopped)`);
}

async function expunge(vm) {
  if (!await confirmDialog(`Expunge ${vm.name}? Its disks are deleted and it cannot be recovered.`, "Expunge")) return null;
  return run(`Expunge ${vm.name}`, (p) => api.callAsync("expungeVirtualMachine", {id: vm.id}, p), `${vm.name} expunged`);
}

/** A console: the API grants a one-use URL on a console proxy, opened in a new window. */
async function console_(vm) {
  return run(`Console of ${vm.name}`, async () => {
    const answer = await api.call("createConsoleEndpoint", {virtualmachineid: vm.id});
    const endpoint = answer.consoleendpoint || answer;
    if (String(endpoint.success) !== "true" || !endpoint.url) {
      throw new Error(endpoint.details || "no console is available");
    }
    // a window without an opener; where the browser blocks it, a link the user can follow instead
    const opened = window.open("", "_blank");
    if (opened) {
      opened.opener = null;
      opened.location.href = endpoint.url;
    } else {
      const dialog = modal(`Console of ${vm.name}`, h("p", {}, "The browser did not open a new window. ",
        h("a", {href: endpoint.url, target: "_blank", rel: "noopener noreferrer", onclick: () => dialog.close()},
          "Open the console"), " (the link works once, within a minute)."),
        [h("button", {type: "button", onclick: () => dialog.close()}, "Close")]);
    }
    return endpoint;
  }, `Console of ${vm.name} opened`);
}

async function scale(vm) {
  const offerings = (await api.all("listServiceOfferings", "serviceoffering", {virtualmachineid: vm.id})).filter((o) => o.id !== vm.serviceofferingid);
  if (!offerings.length) { toast("There is no other compute offering to change to.", "info"); return null; }
  const values = await formDialog({
    title: `Change the offering of ${vm.name}`, submitLabel: "Change",
    intro: `Now: ${vm.serviceofferingname} (${vm.cpunumber} vCPU, ${vm.memory} MB). The instance must be stopped.`,
    fields: [
      {name: "serviceofferingid", label: "Compute offering", type: "select", required: true,
       options: offerings.map((o) => ({value: o.id, label: offeringLabel(o)}))},
      {name: "cpunumber", label: "vCPUs (custom offerings only)", type: "number", min: 1},
      {name: "memory", label: "Memory in MB (custom offerings only)", type: "number", min: 32},
    ],
    onSubmit: async (v, {progress}) => {
      const params = {id: vm.id, serviceofferingid: v.serviceofferingid};
      const chosen = offerings.find((o) => o.id === v.serviceofferingid);
      if (chosen && chosen.iscustomized) Object.assign(params, {cpunumber: v.cpunumber, memory: v.memory});
      return api.callAsync("scaleVirtualMachine", params, () => progress("Changing…"));
    },
  });
  if (values) toast(`${vm.name} now has its new offering`, "ok");
  return values;
}

async function userData(vm) {
  let current = "";
  try {
    const answer = await api.call("getVirtualMachineUserData", {virtualmachineid: vm.id});
    current = fromBase64((answer.virtualmachineuserdata || answer).userdata || "");
  } catch (err) {
    toast(`Could not read the user data: ${err.message}`, "error");
    return null;
  }
  const values = await formDialog({
    title: `User data of ${vm.name}`, submitLabel: "Save",
    intro: "The guest reads its user data from the cloud's metadata service; cloud-init applies a change at the next boot.",
    fields: [{name: "userdata", label: "User data", type: "textarea", rows: 10, value: current, required: true,
              help: "Plain text (e.g. #cloud-config); the UI sends it base64-encoded."}],
    onSubmit: (v) => api.call("updateVirtualMachine", {id: vm.id, userdata: toBase64(v.userdata)}),
  });
  if (values) toast(`User data of ${vm.name} saved`, "ok");
  return values;
}

async function resetPassword(vm) {
  if (!await confirmDialog(`Give ${vm.name} a new password? The old one stops working.`, "Reset password")) return null;
  const result = await run(`Reset the password of ${vm.name}`,
                           (p) => api.callAsync("resetPasswordForVirtualMachine", {id: vm.id}, p));
  const password = result && result.virtualmachine && result.virtualmachine.password;
  if (password) {
    await formDialog({title: `New password of ${vm.name}`, submitLabel: "Close",
                      intro: "Shown once: copy it now.",
                      fields: [{name: "password", label: "Password", value: password}], onSubmit: () => true});
  }
  return result;
}

export function offeringLabel(o) {
  return o.iscustomized ? `${o.name} (custom)` : `${o.name} (${o.cpunumber} vCPU, ${o.memory} MB)`;
}

/** What the VM's state allows, for the list's rows and the instance page. */
function actionsFor(vm, where) {
  const s = vm.state;
  const out = [];
  if (s === "Stopped") out.push({label: "Start", run: start});
  if (s === "Running") out.push({label: "Stop", run: stop}, {label: "Reboot", run: reboot}, {label: "Console", run: console_});
  if (where === "page" && s === "Stopped") {
    out.push({label: "Change offering", run: scale});
    if (vm.passwordenabled) out.push({label: "Reset password", run: resetPassword});
  }
  if (where === "page" && (s === "Running" || s === "Stopped")) out.push({label: "User data", run: userData});
  if (s === "Destroyed" && api.isAdmin()) out.push({label: "Recover", run: recover}, {label: "Expunge", run: expunge, danger: true});
  if (!["Destroyed", "Expunging"].includes(s) && !TRANSITIONAL.has(s)) out.push({label: "Destroy", run: destroy, danger: true});
  return out;
}

// ---------------------------------------------------------------- the list

route("instances", {
  title: "Instances", section: "Compute",
  render(view) {
    const admin = api.isAdmin();
    view.append(header("Instances"));
    const box = h("div");
    view.append(box);
    const columns = [
      {label: "Name", render: (vm) => link("instance", vm.displayname && vm.displayname !== vm.name
        ? `${vm.displayname} (${vm.name})` : vm.name, vm.id)},
      {label: "State", render: (vm) => badge(vm.state)},
      {label: "IP addresses", render: addresses},
      {label: "Zone", field: "zonename"},
      {label: "Template", render: (vm) => vm.templatename || vm.isoname || ""},
      {label: "Offering", field: "serviceofferingname"},
    ];
    if (admin) columns.push({label: "Account", render: (vm) => `${vm.account} (${vm.domain})`}, {label: "Host", field: "hostname"});
    columns.push({label: "Created", render: (vm) => when(vm.created)});
    listView(box, {
      command: "listVirtualMachines", key: "virtualmachine", params: () => ({...scope(), details: "min"}),
      columns, refreshMs: 4000,
      actions: (vm) => actionsFor(vm, "list"),
      toolbar: [{label: "Deploy", run: () => go("deploy")}],
      empty: "No instances yet. Deploy one with the Deploy button.",
    });
  },
});

// ---------------------------------------------------------------- one instance

async function fetchVm(id) {
  const {items} = await api.list("listVirtualMachines", "virtualmachine", {id, ...scope()});
  if (!items.length) throw new Error("There is no such instance (or it was expunged).");
  return items[0];
}

function nicTable(vm) {
  const nics = vm.nic || [];
  if (!nics.length) return h("p", {class: "list-status empty"}, "No network interfaces.");
  return h("table", {class: "list"},
    h("thead", {}, h("tr", {}, ["Network", "IP address", "Netmask", "Gateway", "MAC", "Default"].map((t) => h("th", {scope: "col"}, t)))),
    h("tbody", {}, nics.map((n) => h("tr", {},
      [n.networkname, n.ipaddress, n.netmask, n.gateway, n.macaddress, n.isdefault ? "yes" : ""]
        .map((v, i) => h("td", {"data-label": ["Network", "IP address", "Netmask", "Gateway", "MAC", "Default"][i]}, v ?? ""))))));
}

async function volumeTable(vm) {
  const labels = ["Name", "Type", "Size", "State", "Storage"];
  let items;
  try {
    items = (await api.list("listVolumes", "volume", {virtualmachineid: vm.id, ...scope()})).items;
  } catch (err) {
    return h("p", {class: "list-status error", role: "alert"}, `Could not load the volumes: ${err.message}`);
  }
  if (!items.length) return h("p", {class: "list-status empty"}, "No volumes.");
  return h("table", {class: "list"},
    h("thead", {}, h("tr", {}, labels.map((t) => h("th", {scope: "col"}, t)))),
    h("tbody", {}, items.map((v) => h("tr", {dataset: {id: v.id}},
      [v.name, v.type, bytes(v.size), badge(v.state), v.storage || ""].map((c, i) => h("td", {"data-label": labels[i]}, c))))));
}

function thumbnail(vm) {
  const box = h("figure", {class: "vm-screen"});
  const load = async () => {
    clear(box).append(h("p", {class: "loading"}, "Loading the screen…"));
    try {
      const answer = await api.call("getVirtualMachineThumbnail", {virtualmachineid: vm.id});
      const shot = answer.thumbnail || answer;
      clear(box).append(
        h("img", {src: `data:${shot.mimetype || "image/png"};base64,${shot.image}`, width: shot.width, height: shot.height,
                  alt: `The screen of ${vm.name}`}),
        h("figcaption", {}, h("button", {type: "button", class: "small", onclick: load}, "Refresh screen")));
    } catch (err) {
      clear(box).append(h("p", {class: "list-status error"}, `No screen image: ${err.message}`),
                        h("button", {type: "button", class: "small", onclick: load}, "Try again"));
    }
  };
  load();
  return box;
}

route("instance", {
  title: "Instance", section: "Compute", nav: false,
  async render(view, id) {
    if (!id) { go("instances"); return; }
    let vm = await fetchVm(id);
    const draw = async () => {
      document.title = `${vm.name} · hvcloud`;
      const buttons = actionsFor(vm, "page").map((a) => h("button", {
        type: "button", class: a.danger ? "danger" : "",
        onclick: async () => {
          await a.run(vm);
          try { vm = await fetchVm(id); } catch { go("instances"); return; }  // expunged: back to the list
          await draw();
        }}, a.label));
      const admin = api.isAdmin();
      const rows = [
        ["State", badge(vm.state)],
        vm.details && vm.details.statereason ? ["State reason", vm.details.statereason] : null,
        ["Name", vm.name], ["Display name", vm.displayname], vm.instancename ? ["Instance name", vm.instancename] : null,
        ["IP addresses", addresses(vm) || "–"], vm.publicip ? ["Public IP", vm.publicip] : null,
        ["Zone", vm.zonename], ["Template", vm.templatename || "–"], vm.isoname ? ["ISO", vm.isoname] : null,
        ["Compute offering", vm.serviceofferingname],
        ["CPU", `${vm.cpunumber} × ${vm.cpuspeed} MHz`], ["Memory", bytes((vm.memory || 0) * 1024 * 1024)],
        ["Hypervisor", vm.hypervisor],
        admin ? ["Host", vm.hostname || "–"] : null,
        admin ? ["Account", `${vm.account} (${vm.domain})`] : null,
        vm.keypairs ? ["SSH key pairs", vm.keypairs] : null,
        vm.group ? ["Group", vm.group] : null,
        ["Created", when(vm.created)], ["ID", vm.id],
      ];
      const volumes = h("div", {}, h("p", {class: "loading"}, "Loading…"));
      append(clear(view), [
        h("p", {class: "crumbs"}, link("instances", "Instances"), " › ", vm.name),
        header(vm.displayname || vm.name, buttons),
        details(rows),
        h("h2", {}, "Network interfaces"), nicTable(vm),
        h("h2", {}, "Volumes"), volumes,
        vm.state === "Running" ? [h("h2", {}, "Screen"), thumbnail(vm)] : null]);
      volumeTable(vm).then((table) => clear(volumes).append(table));
    };
    await draw();
    // the state changes without a reload: poll while this page is shown, redraw when it moved
    const timer = setInterval(async () => {
      if (!view.isConnected || !document.body.contains(view)) { clearInterval(timer); return; }
      if (document.querySelector("dialog[open]")) return;
      try {
        const fresh = await fetchVm(id);
        if (fresh.state !== vm.state || addresses(fresh) !== addresses(vm) || fresh.hostid !== vm.hostid) {
          vm = fresh;
          if (view.isConnected) await draw();
        }
      } catch { /* gone: the next action says so */ }
    }, 4000);
  },
});
