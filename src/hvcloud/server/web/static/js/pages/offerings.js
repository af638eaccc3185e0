// Service, disk and network offerings (operator pages).

import * as api from "../api.js";
import {badge, bytes, h, when} from "../dom.js";
import {route} from "../router.js";
import {confirmDialog, formDialog, header, listView, run} from "../widgets.js";

const SECTION = "Offerings";
const STORAGE_TYPES = [{value: "shared", label: "Shared"}, {value: "local", label: "Local"}];
const PROVISIONING = [{value: "thin", label: "Thin"}, {value: "sparse", label: "Sparse"}, {value: "fat", label: "Fat"}];

async function remove(what, row, command) {
  if (!await confirmDialog(`Delete ${what} ${row.name}? Existing VMs and volumes keep it; new ones cannot use it.`, "Delete")) return;
  await run(`Deleting ${what} ${row.name}`, () => api.call(command, {id: row.id}));
}

const flag = (v) => (v ? "yes" : "no");

// ---------------------------------------------------------------- service offerings

async function addServiceOffering() {
  return formDialog({
    title: "Add a service offering", submitLabel: "Add offering",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "displaytext", label: "Description"},
      {name: "customized", label: "Custom size (CPUs and memory chosen at deployment)", type: "checkbox"},
      {name: "cpunumber", label: "CPUs", type: "number", min: 1, max: 1024, value: "1", required: true, showIf: (v) => !v.customized},
      {name: "cpuspeed", label: "CPU speed (MHz)", type: "number", min: 1, value: "1000"},
      {name: "memory", label: "Memory (MiB)", type: "number", min: 32, value: "512", required: true, showIf: (v) => !v.customized},
      {name: "rootdisksize", label: "Root disk size (GiB)", type: "number", min: 1, help: "Empty: the template's size"},
      {name: "storagetype", label: "Storage type", type: "select", required: true, options: STORAGE_TYPES, value: "shared"},
      {name: "provisioningtype", label: "Provisioning", type: "select", required: true, options: PROVISIONING, value: "thin"},
      {name: "offerha", label: "Offer HA (restart the VM elsewhere if its host fails)", type: "checkbox"},
      {name: "hosttags", label: "Host tags", help: "Comma separated (optional)"},
      {name: "tags", label: "Storage tags", help: "Comma separated (optional)"},
    ],
    onSubmit: async (v) => {
      const params = {...v, customized: v.customized ? "true" : undefined, offerha: v.offerha ? "true" : undefined};
      return (await api.call("createServiceOffering", params)).serviceoffering;
    },
  });
}

route("serviceofferings", {
  title: "Service offerings", section: SECTION, admin: true,
  render(view) {
    view.append(header("Service offerings"));
    listView(view.appendChild(h("div")), {
      command: "listServiceOfferings", key: "serviceoffering",
      toolbar: [{label: "Add service offering", run: addServiceOffering}],
      empty: "No service offerings: tenants need one to deploy a VM.",
      columns: [
        {label: "Name", field: "name"}, {label: "Description", field: "displaytext"},
        {label: "CPU", render: (o) => (o.iscustomized ? "Custom" : `${o.cpunumber} × ${o.cpuspeed || "?"} MHz`)},
        {label: "Memory", render: (o) => (o.iscustomized ? "Custom" : `${o.memory} MiB`)},
        {label: "Root disk", render: (o) => (o.rootdisksize ? bytes(o.rootdisksize) : "template's")},
        {label: "Storage", render: (o) => `${o.storagetype || ""}, ${o.provisioningtype || ""}`},
        {label: "HA", render: (o) => flag(o.offerha)},
        {label: "Host tags", field: "hosttags"},
        {label: "Created", render: (o) => when(o.created)},
      ],
      actions: (o) => [{label: "Delete", danger: true, run: () => remove("service offering", o, "deleteServiceOffering")}],
    });
  },
});

// ---------------------------------------------------------------- disk offerings

async function addDiskOffering() {
  return formDialog({
    title: "Add a disk offering", submitLabel: "Add offering",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "displaytext", label: "Description"},
      {name: "customized", label: "Custom size (chosen when the volume is created)", type: "checkbox"},
      {name: "disksize", label: "Size (GiB)", type: "number", min: 1, value: "10", required: true, showIf: (v) => !v.customized},
      {name: "storagetype", label: "Storage type", type: "select", required: true, options: STORAGE_TYPES, value: "shared"},
      {name: "provisioningtype", label: "Provisioning", type: "select", required: true, options: PROVISIONING, value: "thin"},
      {name: "tags", label: "Storage tags", help: "Comma separated (optional)"},
      {name: "displayoffering", label: "Shown to users", type: "checkbox", value: true},
    ],
    onSubmit: async (v) => {
      const params = {...v, customized: v.customized ? "true" : undefined, displayoffering: v.displayoffering ? "true" : "false"};
      return (await api.call("createDiskOffering", params)).diskoffering;
    },
  });
}

route("diskofferings", {
  title: "Disk offerings", section: SECTION, admin: true,
  render(view) {
    view.append(header("Disk offerings"));
    listView(view.appendChild(h("div")), {
      command: "listDiskOfferings", key: "diskoffering",
      toolbar: [{label: "Add disk offering", run: addDiskOffering}],
      empty: "No disk offerings: tenants need one to add data volumes.",
      columns: [
        {label: "Name", field: "name"}, {label: "Description", field: "displaytext"},
        {label: "Size", render: (o) => (o.iscustomized ? "Custom" : `${o.disksize} GiB`)},
        {label: "Storage", render: (o) => `${o.storagetype || ""}, ${o.provisioningtype || ""}`},
        {label: "Tags", field: "tags"}, {label: "Shown to users", render: (o) => flag(o.displayoffering)},
        {label: "Created", render: (o) => when(o.created)},
      ],
      actions: (o) => [{label: "Delete", danger: true, run: () => remove("disk offering", o, "deleteDiskOffering")}],
    });
  },
});

// ---------------------------------------------------------------- network offerings

route("networkofferings", {
  title: "Network offerings", section: SECTION, admin: true,
  render(view) {
    view.append(header("Network offerings"),
      h("p", {class: "intro"}, "The built-in offerings cover isolated, shared and L2 networks. New offerings (their " +
        "services and providers) are made with the createNetworkOffering API; here they are enabled or disabled."));
    listView(view.appendChild(h("div")), {
      command: "listNetworkOfferings", key: "networkoffering",
      columns: [
        {label: "Name", field: "name"}, {label: "Description", field: "displaytext"},
        {label: "Guest type", field: "guestiptype"}, {label: "State", render: (o) => badge(o.state)},
        {label: "Services", render: (o) => (o.service || []).map((s) => s.name).join(", ")},
        {label: "Default", render: (o) => flag(o.isdefault)}, {label: "Availability", field: "availability"},
      ],
      actions: (o) => [
        {label: o.state === "Enabled" ? "Disable" : "Enable", run: () => run(`Updating ${o.name}`,
          () => api.call("updateNetworkOffering", {id: o.id, state: o.state === "Enabled" ? "Disabled" : "Enabled"}))},
        !o.isdefault && {label: "Delete", danger: true, run: () => remove("network offering", o, "deleteNetworkOffering")},
      ],
    });
  },
});
