// Storage › Templates and ISOs: lists by filter (self, featured, community; all for operators),
// register by URL, upload a file from the browser (getUploadParamsFor{Template,Iso}, then the file
// POSTed to the signed upload URL with its X-signature / X-metadata / X-expires headers), visibility
// (update{Template,Iso}Permissions) and delete.

import * as api from "../api.js";
import {bytes, clear, h, when} from "../dom.js";
import {route} from "../router.js";
import {confirmDialog, formDialog, header, listView, run, toast} from "../widgets.js";

const FORMATS = ["QCOW2", "RAW", "VHD", "VHDX"];

const KINDS = {
  templates: {
    title: "Templates", noun: "template", iso: false, list: "listTemplates", key: "template",
    filterParam: "templatefilter", register: "registerTemplate", upload: "getUploadParamsForTemplate",
    permissions: "updateTemplatePermissions", remove: "deleteTemplate",
  },
  isos: {
    title: "ISOs", noun: "ISO", iso: true, list: "listIsos", key: "iso",
    filterParam: "isofilter", register: "registerIso", upload: "getUploadParamsForIso",
    permissions: "updateIsoPermissions", remove: "deleteIso",
  },
};

// the filter each page showed last (kept while the app runs)
const chosenFilter = {templates: "self", isos: "self"};

function filters() {
  const out = [{value: "self", label: "Mine"}, {value: "featured", label: "Featured"},
               {value: "community", label: "Community (public, from other accounts)"},
               {value: "executable", label: "Everything I can use"}];
  if (api.isAdmin()) out.push({value: "all", label: "All (every account)"});
  return out;
}

function mine(row) {
  const u = api.user();
  return api.isAdmin() || (row.account === u.account && row.domainid === u.domainid);
}

const KNOWN_STATUS = new Set(["Download Complete", "Not Downloaded", "Not Uploaded", "Upload in progress"]);

function stateCell(row) {
  if (row.isready) return h("span", {class: "badge good"}, "Ready");
  const status = row.status || "Not ready";
  const working = KNOWN_STATUS.has(status) || /^\d+% Downloaded$/.test(status) || status === "Not ready";
  return h("span", {class: `badge ${working ? "neutral" : "bad"}`, title: status}, status);
}

function yes(flag) { return flag ? "Yes" : "No"; }

// ---------------------------------------------------------------- the fields both forms share

async function sharedFields(kind, {url}) {
  const [zones, osTypes, hypervisors] = await Promise.all([
    api.all("listZones", "zone"), api.all("listOsTypes", "ostype"),
    kind.iso ? Promise.resolve([]) : api.all("listHypervisors", "hypervisor")]);
  const zoneOptions = zones.map((z) => ({value: z.id, label: z.name}));
  if (url && zones.length > 1) zoneOptions.unshift({value: "-1", label: "All zones"});
  const fields = [
    {name: "name", label: "Name", required: true},
    {name: "displaytext", label: "Description", placeholder: "Defaults to the name"},
    {name: "zoneid", label: "Zone", type: "select", required: true, options: zoneOptions},
  ];
  if (!kind.iso) {
    fields.push(
      {name: "format", label: "Format", type: "select", required: !!url, options: FORMATS,
       placeholder: "From the file name", value: url ? "QCOW2" : undefined},
      {name: "hypervisor", label: "Hypervisor", type: "select", required: true,
       options: hypervisors.map((hv) => hv.name)});
  }
  fields.push({name: "ostypeid", label: "OS type", type: "select", placeholder: "—",
               options: osTypes.map((o) => ({value: o.id, label: o.description}))});
  if (kind.iso) fields.push({name: "bootable", label: "Bootable", type: "checkbox", value: true});
  else fields.push({name: "passwordenabled", label: "Password reset enabled", type: "checkbox"});
  fields.push({name: "ispublic", label: "Public (every account can use it)", type: "checkbox"});
  if (api.isAdmin()) fields.push({name: "isfeatured", label: "Featured", type: "checkbox"});
  fields.push(
    {name: "isextractable", label: "Extractable (may be downloaded)", type: "checkbox"},
    {name: "checksum", label: "Checksum", placeholder: "{SHA-256}hex, or an MD5 hex digest",
     help: "Optional; the image is checked against it"});
  return fields;
}

function apiParams(values) {
  const params = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === "" || value === false && key !== "bootable") continue;
    params[key] = value;
  }
  return params;
}

// ---------------------------------------------------------------- register by URL

async function registerByUrl(kind, reload) {
  const fields = await sharedFields(kind, {url: true});
  fields.splice(2, 0, {name: "url", label: "URL", type: "url", required: true, placeholder: "https://…",
                       help: `Where the server downloads the ${kind.noun} from (HTTP or HTTPS)`});
  return formDialog({
    title: `Register ${kind.noun} from a URL`, submitLabel: "Register", fields,
    onSubmit: async (values) => {
      await api.call(kind.register, apiParams(values));
      toast(`${values.name} registered; the server is downloading it`, "ok");
      reload();
    },
  });
}

// ---------------------------------------------------------------- upload from the browser

// uploads in flight or finished, kept across page changes (the XMLHttpRequest goes on meanwhile)
const uploads = [];
// the page now showing each kind's uploads ({show, reload}), if any
const shown = {};

function changed(kind) {
  const page = shown[kind.noun];
  if (page && page.box.isConnected) { page.show(); page.reload(); }
}

function guessFormat(file) {
  const ext = (file.name.split(".").pop() || "").toUpperCase();
  return FORMATS.includes(ext) ? ext : (ext === "IMG" ? "RAW" : null);
}

/** The signed upload URL, on this origin: the UI may only connect to the server that serves it (CSP). */
function uploadTarget(postURL) {
  const url = new URL(postURL, location.href);
  return url.origin === location.origin ? url.href : location.origin + url.pathname;
}

function uploadRow(item) {
  item.bar = h("progress", {max: 100, value: 0, class: "progress", "aria-label": `Upload of ${item.name}`});
  item.text = h("span", {class: "upload-state", role: "status"}, "Starting…");
  item.cancel = h("button", {type: "button", class: "small", onclick: () => item.xhr && item.xhr.abort()}, "Cancel");
  item.dismiss = h("button", {type: "button", class: "small ghost", hidden: true, "aria-label": `Dismiss ${item.name}`,
                              onclick: () => { uploads.splice(uploads.indexOf(item), 1); item.el.remove(); }}, "×");
  item.el = h("li", {class: "upload", dataset: {name: item.name}},
              h("strong", {}, item.name), h("span", {class: "muted"}, ` ${item.fileName}, ${bytes(item.size)}`),
              item.bar, item.text, item.cancel, item.dismiss);
}

function finish(item, kind, text) {
  item.text.textContent = text;
  item.state = kind;
  item.el.classList.add(kind);
  item.cancel.hidden = true;
  item.dismiss.hidden = false;
  if (item.onchange) item.onchange();
}

function send(item, file, params) {
  const xhr = new XMLHttpRequest();
  item.xhr = xhr;
  xhr.open("POST", uploadTarget(params.postURL));
  xhr.setRequestHeader("X-signature", params.signature);
  xhr.setRequestHeader("X-metadata", params.metadata);
  xhr.setRequestHeader("X-expires", params.expires);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.onprogress = (ev) => {
    if (!ev.lengthComputable) return;
    const pct = Math.floor((ev.loaded / ev.total) * 100);
    item.bar.value = pct;
    item.text.textContent = `${pct} % (${bytes(ev.loaded)} of ${bytes(ev.total)})`;
  };
  return new Promise((resolve, reject) => {
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300 && body && body.jobid) resolve(body);
      else reject(new Error((body && body.errortext) || `the upload was refused (HTTP ${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("the connection to the server failed"));
    xhr.onabort = () => reject(new Error("cancelled"));
    xhr.send(file);
  });
}

async function startUpload(kind, file, params, name) {
  const item = {kind: kind.noun, name, fileName: file.name, size: file.size, state: "running",
                onchange: () => changed(kind)};
  uploadRow(item);
  uploads.push(item);
  if (item.onchange) item.onchange();
  try {
    const answer = await send(item, file, params);
    item.bar.value = 100;
    item.text.textContent = "100 % sent; the server is checking the image…";
    await api.job(answer.jobid);
    finish(item, "done", "100 % — ready");
    toast(`${name} is uploaded and ready`, "ok");
  } catch (err) {
    finish(item, "failed", `Failed: ${err.message}`);
    toast(`Upload of ${name} failed: ${err.message}`, "error");
  }
}

async function uploadFile(kind) {
  const fields = await sharedFields(kind, {url: false});
  fields.unshift({name: "file", label: "File", type: "file", required: true,
                  accept: kind.iso ? ".iso" : ".qcow2,.raw,.img,.vhd,.vhdx"});
  return formDialog({
    title: `Upload ${kind.noun} from this computer`, submitLabel: "Upload", fields,
    onSubmit: async (values) => {
      const file = values.file;
      if (!file) throw new Error("Choose a file");
      const params = apiParams({...values, file: undefined});
      if (!kind.iso) {
        params.format = values.format || guessFormat(file);
        if (!params.format) throw new Error(`Choose the format: the file name does not say it (${FORMATS.join(", ")})`);
      }
      const answer = await api.call(kind.upload, params);
      const signed = answer.getuploadparams || answer;
      startUpload(kind, file, signed, values.name);
    },
  });
}

function uploadsPanel(kind) {
  const list = h("ul", {class: "uploads", "aria-label": "Uploads"});
  const box = h("section", {class: "uploads-panel", hidden: true}, h("h2", {}, "Uploads"), list);
  function show() {
    clear(list);
    for (const item of uploads.filter((u) => u.kind === kind.noun)) list.append(item.el);
    box.hidden = !list.children.length;
  }
  return {box, show};
}

// ---------------------------------------------------------------- permissions and delete

async function editPermissions(kind, row) {
  const fields = [
    {name: "ispublic", label: "Public (every account can use it)", type: "checkbox", value: !!row.ispublic},
    api.isAdmin() ? {name: "isfeatured", label: "Featured", type: "checkbox", value: !!row.isfeatured} : null,
    {name: "isextractable", label: "Extractable (may be downloaded)", type: "checkbox", value: !!row.isextractable},
  ].filter(Boolean);
  return formDialog({
    title: `Visibility of ${row.name}`, submitLabel: "Save", fields,
    intro: "Sharing with single accounts is not supported by this cloud: a template is private or public.",
    onSubmit: async (values) => {
      await api.call(kind.permissions, {id: row.id, ...values});
      toast(`${row.name}: visibility saved`, "ok");
    },
  });
}

async function remove(kind, row) {
  if (!await confirmDialog(`Delete ${kind.noun} ${row.name} from every zone? Instances already made from it keep running.`,
                           "Delete")) return;
  await run(`Deleting ${row.name}`, (p) => api.callAsync(kind.remove, {id: row.id}, p));
}

// ---------------------------------------------------------------- the pages

function page(name) {
  const kind = KINDS[name];
  return {
    title: kind.title, section: "Storage",
    async render(view) {
      const panel = uploadsPanel(kind);
      const select = h("select", {id: `${name}-filter`, "aria-label": "Show"},
                       filters().map((f) => h("option", {value: f.value}, f.label)));
      select.value = chosenFilter[name];
      const box = h("div");
      let lister = null;
      const reload = () => { panel.show(); if (lister) lister.reload(true); };
      view.append(
        header(kind.title,
               h("button", {type: "button", class: "primary", onclick: () => registerByUrl(kind, reload)}, "Register from URL"),
               h("button", {type: "button", class: "primary", onclick: () => uploadFile(kind)}, "Upload file")),
        panel.box,
        h("div", {class: "filter"}, h("label", {for: select.id}, "Show "), select),
        box);
      shown[kind.noun] = {box: panel.box, show: panel.show, reload};
      panel.show();
      const admin = api.isAdmin();
      const columns = [
        {label: "Name", render: (r) => h("span", {title: r.displaytext || ""}, r.name)},
        {label: "State", render: stateCell},
        {label: "Size", render: (r) => (r.size ? bytes(r.size) : "")},
        kind.iso ? {label: "Bootable", render: (r) => yes(r.bootable)} : {label: "Format", field: "format"},
        kind.iso ? null : {label: "Hypervisor", field: "hypervisor"},
        {label: "OS type", field: "ostypename"},
        {label: "Zone", field: "zonename"},
        {label: "Public", render: (r) => yes(r.ispublic)},
        {label: "Featured", render: (r) => yes(r.isfeatured)},
        {label: "Account", field: "account"},
        {label: "Created", render: (r) => when(r.created)},
      ].filter(Boolean);
      lister = listView(box, {
        command: kind.list, key: kind.key, columns, refreshMs: 5000,
        params: () => ({[kind.filterParam]: select.value, ...(admin && select.value === "all" ? {listall: true} : {})}),
        empty: `No ${kind.title.toLowerCase()} here. Register one from a URL or upload a file.`,
        actions: (row) => (mine(row) ? [
          {label: "Visibility", run: (r) => editPermissions(kind, r)},
          {label: "Delete", danger: true, run: (r) => remove(kind, r)},
        ] : []),
      });
      select.addEventListener("change", () => { chosenFilter[name] = select.value; lister.reload(); });
    },
  };
}

route("templates", page("templates"));
route("isos", page("isos"));
