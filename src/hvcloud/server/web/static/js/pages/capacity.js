// Capacity per zone (listCapacity, image stores, public IPs) as bar charts, a time series from the
// samples this page takes while it is open (the server keeps no capacity history), and the alerts.

import * as api from "../api.js";
import {barChart, lineChart} from "../charts.js";
import {bytes, clear, h, when} from "../dom.js";
import {route} from "../router.js";
import {confirmDialog, header, listView, run} from "../widgets.js";

const SAMPLE_MS = 10000;
const MAX_SAMPLES = 360; // an hour at one sample per 10 s
/** zone id → resource label → [[Date, percent]]; kept while the browser tab lives. */
const history = new Map();

const mhz = (n) => (Number(n) >= 1000 ? `${(Number(n) / 1000).toFixed(1)} GHz` : `${Number(n) || 0} MHz`);
const count = (n) => String(Number(n) || 0);

// listCapacity's types (CloudStack's numbers) and how to show them
const TYPES = [[1, "CPU", mhz], [0, "Memory", bytes], [2, "Primary storage", bytes],
               [3, "Primary allocated", bytes], [9, "Local storage", bytes]];

/** Every zone's bars: [{zone, bars: [{label, used, total, format}]}]. */
async function measure() {
  const [zones, capacity, stores] = await Promise.all([
    api.all("listZones", "zone"), api.all("listCapacity", "capacity"), api.all("listImageStores", "imagestore")]);
  const out = [];
  for (const zone of zones) {
    const bars = [];
    for (const [type, label, format] of TYPES) {
      const entry = capacity.find((c) => c.zoneid === zone.id && Number(c.type) === type);
      if (entry) bars.push({label, used: Number(entry.capacityused) || 0, total: Number(entry.capacitytotal) || 0, format});
      else if (type !== 9) bars.push({label, used: 0, total: 0, format});
    }
    const own = stores.filter((s) => s.zoneid === zone.id || !s.zoneid);
    bars.push({label: "Secondary storage", format: bytes,
               used: own.reduce((n, s) => n + (Number(s.disksizeused) || 0), 0),
               total: own.reduce((n, s) => n + (Number(s.disksizetotal) || 0), 0)});
    const [all, taken] = await Promise.all([
      api.list("listPublicIpAddresses", "publicipaddress", {zoneid: zone.id, listall: "true", allocatedonly: "false", page: 1, pagesize: 1}),
      api.list("listPublicIpAddresses", "publicipaddress", {zoneid: zone.id, listall: "true", allocatedonly: "true", page: 1, pagesize: 1})]);
    bars.push({label: "Public IPs", used: taken.count, total: all.count, format: count});
    out.push({zone, bars});
  }
  return out;
}

function remember(measured) {
  const now = new Date();
  for (const {zone, bars} of measured) {
    if (!history.has(zone.id)) history.set(zone.id, new Map());
    const series = history.get(zone.id);
    for (const b of bars) {
      if (!b.total) continue;
      if (!series.has(b.label)) series.set(b.label, []);
      const points = series.get(b.label);
      points.push([now, (100 * b.used) / b.total]);
      if (points.length > MAX_SAMPLES) points.shift();
    }
  }
}

function draw(box, measured) {
  clear(box);
  if (!measured.length) {
    box.append(h("p", {class: "list-status empty"}, "No zones yet: capacity appears once a zone has hosts and storage."));
    return;
  }
  for (const {zone, bars} of measured) {
    const series = [...(history.get(zone.id) || new Map()).entries()].map(([label, points]) => ({label, points}));
    box.append(h("section", {class: "capacity-zone", "data-zone": zone.id, "aria-label": `Zone ${zone.name}`},
      h("h2", {}, `Zone ${zone.name}`),
      h("div", {class: "chart-grid"},
        barChart({title: `Capacity of zone ${zone.name}: used against total`, bars}),
        lineChart({title: `Zone ${zone.name} over time (% used)`, series,
                   empty: "Collecting samples (one every 10 seconds while this page is open)…"}))));
  }
}

route("capacity", {
  title: "Capacity", section: "Overview", admin: true,
  async render(view) {
    const stamp = h("span", {class: "muted"});
    view.append(header("Capacity", stamp),
      h("p", {class: "intro note"}, "CPU and memory count what the VMs placed on the hosts hold (allocated, " +
        "with the clusters' overcommit); storage what the pools and stores report. The server keeps no capacity " +
        "history: the charts over time show the samples this page takes while it is open, every 10 seconds."));
    const box = view.appendChild(h("div", {class: "capacity", role: "region", "aria-live": "polite", "aria-label": "Capacity charts"}));
    box.append(h("p", {class: "loading"}, "Loading…"));
    const tick = async () => {
      const measured = await measure();
      remember(measured);
      draw(box, measured);
      stamp.textContent = `Measured ${new Date().toLocaleTimeString()}`;
    };
    await tick();
    const timer = setInterval(async () => {
      if (!box.isConnected) { clearInterval(timer); return; }
      try { await tick(); } catch (err) { stamp.textContent = `Could not measure: ${err.message}`; }
    }, SAMPLE_MS);
  },
});

// ---------------------------------------------------------------- alerts

route("alerts", {
  title: "Alerts", section: "Activity", admin: true,
  render(view) {
    view.append(header("Alerts"));
    const box = view.appendChild(h("div"));
    listView(box, {
      command: "listAlerts", key: "alert", refreshMs: 30000, empty: "No alerts. Archived alerts are not shown.",
      toolbar: [{label: "Archive all", primary: false, run: async () => {
        const alerts = await api.all("listAlerts", "alert");
        if (!alerts.length) return;
        if (!await confirmDialog(`Archive all ${alerts.length} alerts?`, "Archive")) return;
        await run("Archiving the alerts", () => api.call("archiveAlerts", {ids: alerts.map((a) => a.id).join(",")}));
      }}],
      columns: [{label: "Sent", render: (a) => when(a.sent)}, {label: "Type", field: "type"},
                {label: "Name", field: "name"}, {label: "Description", field: "description"}],
      actions: (a) => [{label: "Archive", run: () => run("Archiving the alert", () => api.call("archiveAlerts", {ids: a.id}))}],
    });
  },
});
