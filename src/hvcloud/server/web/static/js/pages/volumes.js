// Storage › Volumes: list, create, attach, detach, resize, delete (createVolume, attachVolume,
// detachVolume, resizeVolume, deleteVolume, listVolumes).

import * as api from "../api.js";
import {badge, bytes, h, when} from "../dom.js";
import {link, route} from "../router.js";
import {confirmDialog, formDialog, header, listView, run, toast} from "../widgets.js";

const GiB = 1024 ** 3;

// after a dialog's action succeeds (the dialog itself shows an error and stays open)
const toastDone = (text) => toast(text, "ok");

async function diskOfferings() {
  return api.all("listDiskOfferings", "diskoffering");
}

function offeringLabel(o) {
  return o.iscustomized ? `${o.name} (custom size)` : `${o.name} (${o.disksize} GB)`;
}

async function createVolume() {
  const offerings = await diskOfferings();
  const custom = (id) => !!(offerings.find((o) => o.id === id) || {}).iscustomized;
  const zones = await api.all("listZones", "zone");
  return formDialog({
    title: "Create volume", submitLabel: "Create",
    intro: offerings.length ? null : "There is no disk offering yet: an operator must create one first.",
    fields: [
      {name: "name", label: "Name", required: true, placeholder: "data-1"},
      {name: "zoneid", label: "Zone", type: "select", required: true,
       options: zones.map((z) => ({value: z.id, label: z.name}))},
      {name: "diskofferingid", label: "Disk offering", type: "select", required: true,
       options: offerings.map((o) => ({value: o.id, label: offeringLabel(o)}))},
      {name: "size", label: "Size (GB)", type: "number", required: true, min: 1, step: 1, value: "10",
       showIf: (v) => custom(v.diskofferingid)},
    ],
    onSubmit: async (v, {progress}) => {
      await api.callAsync("createVolume", v, () => progress("Creating…"));
      toastDone(`Volume ${v.name} created`);
    },
  });
}

async function attachVolume(vol) {
  const params = {zoneid: vol.zoneid};
  if (api.isAdmin()) params.listall = true;
  const vms = (await api.all("listVirtualMachines", "virtualmachine", params)).filter((vm) =>
    ["Running", "Stopped"].includes(vm.state) && vm.account === vol.account && vm.domainid === vol.domainid);
  return formDialog({
    title: `Attach ${vol.name}`, submitLabel: "Attach",
    intro: vms.length ? `Instances of ${vol.account} in zone ${vol.zonename}, running or stopped:`
                      : `No running or stopped instance of ${vol.account} in zone ${vol.zonename} to attach to.`,
    fields: [{name: "virtualmachineid", label: "Instance", type: "select", required: true,
              options: vms.map((vm) => ({value: vm.id, label: `${vm.displayname || vm.name} (${vm.state})`}))}],
    onSubmit: async (v, {progress}) => {
      await api.callAsync("attachVolume", {id: vol.id, virtualmachineid: v.virtualmachineid},
                          () => progress("Attaching…"));
      toastDone(`Volume ${vol.name} attached`);
    },
  });
}

async function resizeVolume(vol) {
  const datadisk = vol.type === "DATADISK";
  const offerings = datadisk ? await diskOfferings() : [];
  const current = offerings.find((o) => o.id === vol.diskofferingid);
  const custom = (id) => (id ? !!(offerings.find((o) => o.id === id) || {}).iscustomized
                             : !datadisk || !!(current && current.iscustomized));
  const fields = [];
  if (datadisk) {
    fields.push({name: "diskofferingid", label: "New disk offering", type: "select",
                 placeholder: current ? `Keep ${current.name}` : "Keep the current offering",
                 options: offerings.filter((o) => o.id !== vol.diskofferingid)
                   .map((o) => ({value: o.id, label: offeringLabel(o)}))});
  }
  fields.push(
    {name: "size", label: "New size (GB)", type: "number", required: true, min: 1, step: 1,
     value: String(Math.max(1, Math.round(vol.size / GiB))), showIf: (v) => custom(v.diskofferingid),
     help: `Now ${bytes(vol.size)}`},
    {name: "shrinkok", label: "Allow shrinking (data beyond the new size is lost)", type: "checkbox"});
  return formDialog({
    title: `Resize ${vol.name}`, submitLabel: "Resize", fields,
    intro: !datadisk || custom("") ? null
      : `${vol.diskofferingname || "Its offering"} has a fixed size: choose another offering to resize.`,
    onSubmit: async (v, {progress}) => {
      if (datadisk && !v.diskofferingid && !custom("")) throw new Error("Choose a new disk offering");
      const params = {id: vol.id, size: v.size, diskofferingid: v.diskofferingid};
      if (v.shrinkok) params.shrinkok = true;
      await api.callAsync("resizeVolume", params, () => progress("Resizing…"));
      toastDone(`Volume ${vol.name} resized`);
    },
  });
}

function vmCell(vol) {
  if (!vol.virtualmachineid) return "";
  return h("span", {}, link("instance", vol.vmdisplayname || vol.vmname || vol.virtualmachineid, vol.virtualmachineid),
           vol.vmstate ? ` (${vol.vmstate})` : "");
}

route("volumes", {
  title: "Volumes", section: "Storage",
  async render(view) {
    view.append(header("Volumes"));
    const box = h("div");
    view.append(box);
    const admin = api.isAdmin();
    const columns = [
      {label: "Name", field: "name"},
      {label: "Type", field: "type"},
      {label: "State", render: (v) => badge(v.state)},
      {label: "Size", render: (v) => bytes(v.size)},
      {label: "Instance", render: vmCell},
      {label: "Zone", field: "zonename"},
      {label: "Offering", field: "diskofferingname"},
      admin ? {label: "Account", field: "account"} : null,
      {label: "Created", render: (v) => when(v.created)},
    ].filter(Boolean);
    listView(box, {
      command: "listVolumes", key: "volume", columns, refreshMs: 10000,
      params: () => (admin ? {listall: true} : {}),
      empty: "No volumes yet. Create one, then attach it to an instance.",
      toolbar: [{label: "Create volume", run: createVolume}],
      actions: (vol) => {
        const busy = !["Ready", "Allocated"].includes(vol.state);
        const data = vol.type === "DATADISK";
        return [
          data && !vol.virtualmachineid && !busy && {label: "Attach", run: attachVolume},
          data && vol.virtualmachineid && !busy && {label: "Detach", run: async (v) => {
            if (!await confirmDialog(`Detach ${v.name} from ${v.vmdisplayname || v.vmname}?`, "Detach")) return;
            await run(`Detaching ${v.name}`, (p) => api.callAsync("detachVolume", {id: v.id}, p));
          }},
          !busy && {label: "Resize", run: resizeVolume},
          data && !vol.virtualmachineid && {label: "Delete", danger: true, run: async (v) => {
            if (!await confirmDialog(`Delete volume ${v.name}? Its data is lost.`, "Delete")) return;
            await run(`Deleting ${v.name}`, () => api.call("deleteVolume", {id: v.id}));
          }},
        ];
      },
    });
  },
});
