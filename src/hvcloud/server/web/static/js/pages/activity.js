// Activity › Events and Jobs: listEvents (with a level filter) and listAsyncJobs.

import * as api from "../api.js";
import {h, when} from "../dom.js";
import {route} from "../router.js";
import {header, listView} from "../widgets.js";

const LEVEL_KIND = {INFO: "neutral", WARN: "warn", ERROR: "bad"};

function level(e) {
  return h("span", {class: `badge ${LEVEL_KIND[e.level] || "neutral"}`}, e.level || "–");
}

route("events", {
  title: "Events", section: "Activity",
  async render(view) {
    const admin = api.isAdmin();
    const select = h("select", {id: "events-level"},
                     h("option", {value: ""}, "All levels"), ["INFO", "WARN", "ERROR"].map((l) => h("option", {value: l}, l)));
    const box = h("div");
    view.append(header("Events"), h("div", {class: "filter"}, h("label", {for: select.id}, "Level "), select), box);
    const lister = listView(box, {
      command: "listEvents", key: "event", refreshMs: 15000,
      params: () => ({...(admin ? {listall: true} : {}), level: select.value || undefined}),
      columns: [
        {label: "Level", render: level},
        {label: "Type", field: "type"},
        {label: "Description", field: "description"},
        admin ? {label: "Account", field: "account"} : null,
        {label: "User", field: "username"},
        {label: "Created", render: (e) => when(e.created)},
      ].filter(Boolean),
      empty: "No events yet: they appear as you and the cloud act on your resources.",
    });
    select.addEventListener("change", () => lister.reload());
  },
});

const JOB_STATUS = {0: ["Pending", "neutral"], 1: ["Succeeded", "good"], 2: ["Failed", "bad"]};

function jobStatus(j) {
  const [text, kind] = JOB_STATUS[j.jobstatus] || [String(j.jobstatus), "neutral"];
  const pct = j.jobstatus === 0 && j.jobprocstatus ? ` ${j.jobprocstatus} %` : "";
  return h("span", {class: `badge ${kind}`}, text + pct);
}

/** A job's outcome in a few words: its error, or what it produced. */
function jobResult(j) {
  const r = j.jobresult;
  if (!r || typeof r !== "object") return "";
  if (j.jobstatus === 2) return h("span", {class: "error-text"}, r.errortext || `error ${r.errorcode || ""}`);
  const [key, value] = Object.entries(r)[0] || [];
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const name = value.displayname || value.name || value.id || "";
    return `${key} ${name}${value.state ? ` (${value.state})` : ""}`;
  }
  if (key === "success") return "success";
  return key ? `${key}: ${String(value)}` : "";
}

route("jobs", {
  title: "Jobs", section: "Activity",
  async render(view) {
    const admin = api.isAdmin();
    const box = h("div");
    view.append(header("Jobs"), box);
    listView(box, {
      command: "listAsyncJobs", key: "asyncjobs", refreshMs: 5000, search: false,
      params: () => (admin ? {listall: true} : {}),
      columns: [
        {label: "Command", field: "cmd"},
        {label: "Status", render: jobStatus},
        {label: "Result", render: jobResult},
        {label: "Resource", render: (j) => (j.jobinstancetype ? `${j.jobinstancetype} ${j.jobinstanceid || ""}` : "")},
        {label: "Created", render: (j) => when(j.created)},
        {label: "Completed", render: (j) => when(j.completed)},
      ],
      empty: "No jobs yet: long actions (deploying, attaching, downloading) run as jobs and show here.",
    });
  },
});
