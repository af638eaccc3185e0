// Compute: the deploy wizard (#/deploy). One form in sections: zone, source (template or ISO),
// compute offering, data disk, networks, access (key pair, user data), name. Submitting runs
// deployVirtualMachine's job on the page and then shows the new instance.

import * as api from "../api.js";
import {clear, h} from "../dom.js";
import {go, link, route} from "../router.js";
import {formDialog, header, toast} from "../widgets.js";
import {offeringLabel, toBase64} from "./instances.js";

let ids = 0;

/** A labelled control: {row, control}. */
function field(label, control, help) {
  control.id = control.id || `d${++ids}`;
  const row = h("div", {class: `field ${control.type === "checkbox" ? "checkbox" : ""}`},
                h("label", {for: control.id}, label), control, help ? h("small", {}, help) : null);
  return {row, control};
}

function fill(select, items, label, none) {
  const keep = select.value;
  clear(select);
  if (none !== undefined) select.append(h("option", {value: ""}, none));
  for (const item of items) select.append(h("option", {value: item.id}, label(item)));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  return select;
}

function section(title, ...children) {
  return h("fieldset", {class: "deploy-step"}, h("legend", {}, title), children);
}

route("deploy", {
  title: "Deploy instance", section: "Compute",
  async render(view) {
    view.append(h("p", {class: "crumbs"}, link("instances", "Instances"), " › Deploy"), header("Deploy an instance"));
    const [zones, offerings, diskOfferings, keypairs] = await Promise.all([
      api.all("listZones", "zone", {available: true}),
      api.all("listServiceOfferings", "serviceoffering"),
      api.all("listDiskOfferings", "diskoffering"),
      api.all("listSSHKeyPairs", "sshkeypair"),
    ]);
    if (!zones.length) {
      view.append(h("p", {class: "list-status empty"}, "No zone is available to deploy into. An operator has to enable one."));
      return;
    }
    if (!offerings.length) {
      view.append(h("p", {class: "list-status empty"}, "There is no compute offering yet. An operator has to create one."));
      return;
    }

    // -- controls
    const zone = fill(h("select", {required: true}), zones, (z) => `${z.name} (${z.networktype})`);
    const useIso = h("input", {type: "checkbox", name: "useiso"});
    const template = h("select", {required: true});
    const templateNote = h("p", {class: "list-status", role: "status"});
    const iso = h("select");
    const rootSize = h("input", {type: "number", min: 1, max: 65536, step: 1, placeholder: "e.g. 20"});
    const offering = fill(h("select", {required: true}), offerings, offeringLabel);
    const cpus = h("input", {type: "number", min: 1, max: 1024, step: 1});
    const memory = h("input", {type: "number", min: 32, step: 1});
    const diskOffering = fill(h("select"), diskOfferings,
                              (d) => d.iscustomized ? `${d.name} (custom size)` : `${d.name} (${d.disksize} GB)`, "No data disk");
    const diskSize = h("input", {type: "number", min: 1, max: 65536, step: 1});
    const networks = h("div", {class: "choices", role: "group", "aria-label": "Networks"});
    const keypair = fill(h("select"), keypairs.map((k) => ({...k, id: k.name})), (k) => k.name, "No key pair");
    const userdata = h("textarea", {rows: 6, placeholder: "#cloud-config\n…"});
    const name = h("input", {pattern: "[A-Za-z0-9]([A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?", autocomplete: "off",
                             title: "Letters, digits and hyphens; not starting or ending with a hyphen; at most 63",
                             placeholder: "optional: the server names it otherwise"});
    const displayName = h("input", {autocomplete: "off"});

    const templateField = field("Template", template);
    const isoField = field("ISO", iso, "The ISO boots the instance; it needs a ROOT disk size.");
    const rootField = field("ROOT disk size (GB)", rootSize);
    const customFields = [field("vCPUs", cpus), field("Memory (MB)", memory)];
    const diskSizeField = field("Data disk size (GB)", diskSize);
    const error = h("p", {class: "form-error", role: "alert", hidden: true});
    const progressText = h("span", {});
    const progressBar = h("progress", {class: "progress", max: 100});
    const progress = h("div", {class: "deploy-progress", role: "status", "aria-live": "polite", hidden: true}, progressText, progressBar);
    const submit = h("button", {type: "submit", class: "primary"}, "Deploy");

    const form = h("form", {class: "form deploy", "aria-label": "Deploy an instance"},
      section("1. Zone", field("Zone", zone).row),
      section("2. Source", field("Boot from an ISO instead of a template", useIso).row, templateField.row, templateNote,
              isoField.row, rootField.row),
      section("3. Compute offering", field("Compute offering", offering).row, customFields.map((f) => f.row)),
      section("4. Data disk", field("Disk offering", diskOffering).row, diskSizeField.row),
      section("5. Networks", networks),
      section("6. Access", field("SSH key pair", keypair, keypairs.length ? null : "You have no key pairs; register one under Access.").row,
              field("User data", userdata, "Plain text (e.g. #cloud-config); sent base64-encoded. Optional.").row),
      section("7. Name", field("Name", name).row, field("Display name", displayName).row),
      error, progress, h("div", {class: "buttons"}, submit));
    view.append(form);

    // -- what shows depends on the choices
    const byId = (list, id) => list.find((x) => x.id === id);
    function refreshVisibility() {
      const iso_ = useIso.checked;
      templateField.row.hidden = iso_;
      template.required = !iso_;
      isoField.row.hidden = !iso_;
      iso.required = iso_;
      rootField.row.hidden = !iso_;
      const chosen = byId(offerings, offering.value);
      for (const f of customFields) { f.row.hidden = !(chosen && chosen.iscustomized); f.control.required = !f.row.hidden; }
      const disk = byId(diskOfferings, diskOffering.value);
      diskSizeField.row.hidden = !(disk && disk.iscustomized);
      diskSize.required = !diskSizeField.row.hidden;
    }

    let zoneSerial = 0;
    async function loadZone() {
      const mine = ++zoneSerial;
      const z = byId(zones, zone.value);
      templateNote.textContent = "Loading…";
      templateNote.className = "list-status loading";
      clear(networks).append(h("p", {class: "loading"}, "Loading…"));
      try {
        const [templates, isos, nets] = await Promise.all([
          api.all("listTemplates", "template", {templatefilter: "executable", zoneid: z.id}),
          api.all("listIsos", "iso", {isofilter: "executable", zoneid: z.id, bootable: true}),
          z.networktype === "Basic" ? Promise.resolve([])
            : api.all("listNetworks", "network", {zoneid: z.id, canusefordeploy: true}),
        ]);
        if (mine !== zoneSerial) return;
        fill(template, templates.filter((t) => t.isready !== false), (t) => t.displaytext && t.displaytext !== t.name
          ? `${t.name} — ${t.displaytext}` : t.name);
        fill(iso, isos.filter((t) => t.isready !== false), (t) => t.name);
        templateNote.textContent = template.options.length ? "" : "No template is ready in this zone.";
        templateNote.className = template.options.length ? "list-status" : "list-status empty";
        clear(networks);
        if (z.networktype === "Basic") {
          networks.append(h("p", {class: "hint"}, "A Basic zone has one network: the instance joins it."));
        } else if (!nets.length) {
          networks.append(h("p", {class: "hint"}, "You have no network in this zone; the server chooses the instance's network."));
        } else {
          networks.append(h("p", {class: "hint"}, "The first network ticked is the default one."));
          nets.forEach((n, i) => {
            const box = h("input", {type: "checkbox", value: n.id, checked: i === 0, name: "network"});
            networks.append(field(`${n.name} (${n.type || ""}${n.cidr ? ", " + n.cidr : ""})`, box).row);
          });
        }
      } catch (err) {
        if (mine !== zoneSerial) return;
        templateNote.textContent = `Could not load this zone's templates and networks: ${err.message}`;
        templateNote.className = "list-status error";
        clear(networks);
      }
    }

    zone.addEventListener("change", loadZone);
    for (const el of [useIso, offering, diskOffering]) el.addEventListener("change", refreshVisibility);
    refreshVisibility();
    await loadZone();

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const params = {zoneid: zone.value, serviceofferingid: offering.value,
                      templateid: useIso.checked ? iso.value : template.value,
                      name: name.value.trim(), displayname: displayName.value.trim(), keypair: keypair.value};
      if (useIso.checked && rootSize.value) params.rootdisksize = rootSize.value;
      if (byId(offerings, offering.value)?.iscustomized) {
        params.cpunumber = cpus.value;
        params.memory = memory.value;
      }
      if (diskOffering.value) {
        params.diskofferingid = diskOffering.value;
        if (byId(diskOfferings, diskOffering.value)?.iscustomized) params.size = diskSize.value;
      }
      const chosenNets = [...networks.querySelectorAll("input[name=network]:checked")].map((b) => b.value);
      if (chosenNets.length) params.networkids = chosenNets.join(",");
      if (userdata.value.trim()) params.userdata = toBase64(userdata.value);

      error.hidden = true;
      submit.disabled = true;
      progress.hidden = false;
      progressBar.removeAttribute("value");
      progressText.textContent = "Submitting the request…";
      let newId = null;
      try {
        const answer = await api.call("deployVirtualMachine", params);
        newId = answer.id || null;
        const started = Date.now();
        progressText.textContent = "Deploying: the job is queued…";
        const result = answer.jobid ? await api.job(answer.jobid, (job) => {
          if (job.jobstatus === 0) {
            progressText.textContent = `Deploying: allocating, creating the disks and starting… (${Math.round((Date.now() - started) / 1000)} s)`;
          }
        }) : answer;
        const vm = result.virtualmachine || {};
        progressBar.value = 100;
        progressText.textContent = `Deployed ${vm.name || ""}: ${vm.state || "done"}.`;
        toast(`Instance ${vm.name || ""} deployed`, "ok");
        if (vm.password) {
          await formDialog({title: `Password of ${vm.name}`, submitLabel: "Close", intro: "Shown once: copy it now.",
                            fields: [{name: "password", label: "Password", value: vm.password}], onSubmit: () => true});
        }
        go("instance", vm.id || newId);
      } catch (err) {
        progress.hidden = true;
        clear(error).append(`The deployment failed: ${err.message}`);
        if (newId) error.append(" ", link("instance", "See the instance", newId));
        error.hidden = false;
        toast(`Deploy failed: ${err.message}`, "error");
        error.scrollIntoView({block: "nearest"});
      } finally {
        submit.disabled = false;
      }
    });
  },
});
