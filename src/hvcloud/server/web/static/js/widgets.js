// The UI's building blocks: lists with paging, form dialogs, confirmations, toasts and actions.
// Every action goes through run(), which shows progress and shows (never swallows) API errors.

import * as api from "./api.js";
import {append, clear, h} from "./dom.js";

// ---------------------------------------------------------------- toasts

export function toast(text, kind = "info", ms = 6000) {
  const box = document.getElementById("toasts");
  const el = h("div", {class: `toast ${kind}`, role: kind === "error" ? "alert" : "status"}, text,
               h("button", {class: "close", "aria-label": "Dismiss", onclick: () => el.remove()}, "×"));
  box.append(el);
  if (ms) setTimeout(() => el.remove(), kind === "error" ? ms * 2 : ms);
  return el;
}

/**
 * Run an action: `label` while it runs, then `done` (or the result's text); an ApiError is shown.
 * fn receives a progress callback for async jobs. Resolves to fn's result, or null on failure.
 */
export async function run(label, fn, done) {
  const note = toast(`${label}…`, "busy", 0);
  try {
    const result = await fn((progress) => {
      if (progress && progress.jobstatus === 0) note.firstChild.textContent = `${label}… (job running)`;
    });
    note.remove();
    toast(done || `${label}: done`, "ok");
    return result ?? true;
  } catch (err) {
    note.remove();
    toast(`${label} failed: ${err.message}`, "error");
    return null;
  }
}

// ---------------------------------------------------------------- dialogs

/** A modal dialog (title, body node, buttons); removed from the page when it closes. */
export function modal(title, body, buttons) {
  const dialog = h("dialog", {class: "modal", "aria-label": title},
                   h("h2", {}, title), body, h("div", {class: "buttons"}, buttons));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
  return dialog;
}

export function confirmDialog(text, okLabel = "OK") {
  return new Promise((resolve) => {
    let answer = false;
    const dialog = modal("Please confirm", h("p", {}, text), [
      h("button", {type: "button", onclick: () => dialog.close()}, "Cancel"),
      h("button", {type: "button", class: "primary danger", onclick: () => { answer = true; dialog.close(); }}, okLabel),
    ]);
    dialog.addEventListener("close", () => resolve(answer));
  });
}

let fieldIds = 0;

/** (Re)fill a select from field.options: a list, or a function of the form's current values. */
async function fillSelect(control, field, values) {
  const before = control.value;
  let options = [];
  try {
    options = typeof field.options === "function" ? await field.options(values || {}) : (field.options || []);
  } catch (err) {
    options = [];
    control.title = `Could not load the choices: ${err.message}`;
  }
  clear(control);
  if (!field.required) control.append(h("option", {value: ""}, field.placeholder || "—"));
  for (const opt of options) {
    const o = typeof opt === "object" ? opt : {value: opt, label: opt};
    control.append(h("option", {value: o.value}, o.label));
  }
  const keep = [...control.options].some((o) => o.value === before) ? before : undefined;
  const wanted = keep ?? (typeof field.value === "function" ? field.value(values || {}) : field.value);
  if (wanted !== undefined && [...control.options].some((o) => o.value === String(wanted))) control.value = String(wanted);
}

async function fieldControl(field, values) {
  const id = `f${++fieldIds}`;
  let control;
  if (field.type === "select") {
    control = h("select", {id, name: field.name, required: field.required});
    await fillSelect(control, field, values);
  } else if (field.type === "textarea") {
    control = h("textarea", {id, name: field.name, required: field.required, rows: field.rows || 4}, field.value ?? "");
  } else if (field.type === "checkbox") {
    control = h("input", {id, name: field.name, type: "checkbox", checked: !!field.value});
  } else {
    control = h("input", {id, name: field.name, type: field.type || "text", required: field.required,
                          value: field.value ?? "", min: field.min, max: field.max, step: field.step,
                          placeholder: field.placeholder, autocomplete: field.autocomplete || "off",
                          accept: field.accept});
  }
  const row = h("div", {class: `field ${field.type || "text"}`},
                h("label", {for: id}, field.label, field.required ? h("span", {class: "req", "aria-hidden": "true"}, " *") : null),
                control, field.help ? h("small", {}, field.help) : null);
  return {row, control};
}

function valueOf(field, control) {
  if (field.type === "checkbox") return control.checked;
  if (field.type === "file") return control.files && control.files[0];
  return control.value.trim ? control.value.trim() : control.value;
}

/**
 * A form in a modal dialog. fields: [{name, label, type, required, options, value, help}].
 * A select's options may be a function of the values so far (options(values)); with
 * dependsOn: ["zoneid", …] it is refilled when those fields change (pickers that cascade). A field
 * with showIf(values) shows (and is sent) only while that holds.
 * onSubmit(values, {progress}) may throw: the error is shown in the dialog and it stays open.
 */
export async function formDialog({title, fields, submitLabel = "OK", onSubmit, intro}) {
  const controls = [];
  const rows = new Map();
  const form = h("form", {method: "dialog", class: "form"});
  if (intro) form.append(h("p", {class: "intro"}, intro));
  const current = () => {
    const values = {};
    for (const [field, control] of controls) {
      if (!control.disabled) values[field.name] = valueOf(field, control);
    }
    return values;
  };
  const applyShowIf = () => {
    for (const [field, control] of controls) {
      if (!field.showIf) continue;
      const shown = !!field.showIf(current());
      rows.get(field.name).hidden = !shown;
      control.disabled = !shown;
    }
  };
  for (const field of fields) {
    const {row, control} = await fieldControl(field, current());
    controls.push([field, control]);
    rows.set(field.name, row);
    form.append(row);
  }
  for (const [field, control] of controls) {
    for (const dep of field.dependsOn || []) {
      const source = controls.find(([f]) => f.name === dep);
      if (!source) continue;
      source[1].addEventListener("change", async () => {
        await fillSelect(control, field, current());
        control.dispatchEvent(new Event("change", {bubbles: true}));
      });
    }
    control.addEventListener("change", applyShowIf);
  }
  applyShowIf();
  const error = h("p", {class: "form-error", role: "alert", hidden: true});
  const progress = h("p", {class: "form-progress", hidden: true});
  const submit = h("button", {type: "submit", class: "primary"}, submitLabel);
  form.append(error, progress);
  return new Promise((resolve) => {
    let result = null;
    const dialog = modal(title, form, [
      h("button", {type: "button", onclick: () => dialog.close()}, "Cancel"), submit]);
    submit.setAttribute("form", "");
    submit.addEventListener("click", (ev) => { ev.preventDefault(); form.requestSubmit(); });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const values = current();
      error.hidden = true;
      submit.disabled = true;
      progress.hidden = false;
      progress.textContent = "Working…";
      try {
        result = await onSubmit(values, {progress: (text) => { progress.textContent = text; }});
        dialog.close();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        submit.disabled = false;
        progress.hidden = true;
      }
    });
    dialog.addEventListener("close", () => resolve(result));
  });
}

// ---------------------------------------------------------------- lists

/**
 * A paged list of an API list command in `container`.
 *   command, key: the list command and its response key; params(): extra parameters;
 *   columns: [{label, field | render(row)}]; actions(row): [{label, run, danger}] per row;
 *   toolbar: [{label, run}]; pageSize (20); pageSizes ([20, 50, 100, 500]; false: no choice — the
 *   choice is kept per command in localStorage); refreshMs (poll while shown); search (keyword box);
 *   empty: text when there is nothing.
 * Returns {reload}.
 */
export function listView(container, spec) {
  const sizes = spec.pageSizes === false ? null : (spec.pageSizes || [20, 50, 100, 500]);
  const sizeKey = `hvcloud.pagesize.${spec.command}`;
  let pageSize = spec.pageSize || 20;
  if (sizes) {
    const kept = Number(localStorage.getItem(sizeKey));
    if (sizes.includes(kept)) pageSize = kept;
  }
  let page = 1;
  let keyword = "";
  let timer = null;
  let serial = 0;       // answers to older requests than the newest are dropped
  let shown = null;     // what the table shows now: a quiet refresh with the same rows does nothing
  const status = h("p", {class: "list-status", role: "status"});
  const table = h("table", {class: "list"});
  const pager = h("nav", {class: "pager", "aria-label": "Pages"});
  const tools = h("div", {class: "toolbar"});
  for (const tool of spec.toolbar || []) {
    tools.append(h("button", {type: "button", class: tool.primary === false ? "" : "primary",
                              onclick: async () => { await tool.run(); reload(); }}, tool.label));
  }
  if (spec.search !== false) {
    const box = h("input", {type: "search", placeholder: "Search", "aria-label": "Search", class: "search"});
    box.addEventListener("change", () => { keyword = box.value.trim(); page = 1; reload(); });
    tools.append(box);
  }
  tools.append(h("button", {type: "button", class: "ghost", "aria-label": "Refresh", onclick: () => reload()}, "Refresh"));
  if (sizes) {
    const select = h("select", {class: "page-size", "aria-label": "Rows per page"},
                     sizes.map((n) => h("option", {value: String(n)}, `${n} per page`)));
    select.value = String(pageSize);
    select.addEventListener("change", () => {
      pageSize = Number(select.value);
      localStorage.setItem(sizeKey, String(pageSize));
      page = 1;
      reload();
    });
    tools.append(select);
  }
  append(clear(container), [tools, status, h("div", {class: "table-wrap"}, table), pager]);

  function cell(column, row) {
    if (column.render) return column.render(row);
    const value = row[column.field];
    return value === undefined || value === null ? "" : String(value);
  }

  function render(items, count) {
    // keep the keyboard where it was: the focused row button is found again by row id and label
    const focused = table.contains(document.activeElement) ? document.activeElement : null;
    const again = focused && focused.closest("tr") ? [focused.closest("tr").dataset.id, focused.textContent] : null;
    clear(table);
    const head = h("tr", {}, spec.columns.map((c) => h("th", {scope: "col"}, c.label)));
    if (spec.actions) head.append(h("th", {scope: "col"}, h("span", {class: "sr"}, "Actions")));
    table.append(h("thead", {}, head));
    const body = h("tbody");
    for (const row of items) {
      const tr = h("tr", {dataset: {id: row.id || ""}}, spec.columns.map((c) => h("td", {"data-label": c.label}, cell(c, row))));
      if (spec.actions) {
        const buttons = spec.actions(row).filter(Boolean).map((a) =>
          h("button", {type: "button", class: a.danger ? "small danger" : "small",
                       onclick: async () => { await a.run(row); reload(); }}, a.label));
        tr.append(h("td", {class: "actions"}, buttons));
      }
      body.append(tr);
    }
    table.append(body);
    if (again) {
      const target = [...body.querySelectorAll("tr")].find((tr) => tr.dataset.id === again[0]);
      const control = target && [...target.querySelectorAll("a, button")].find((b) => b.textContent === again[1]);
      if (control) control.focus({preventScroll: true});
    }
    status.textContent = count ? `${count} in all` : (spec.empty || "Nothing here yet.");
    status.className = count ? "list-status" : "list-status empty";
    table.hidden = !count;  // an empty list says so, without a header over nothing
    clear(pager);
    const pages = Math.max(1, Math.ceil(count / pageSize));
    if (pages > 1) {
      pager.append(
        h("button", {type: "button", disabled: page <= 1, onclick: () => { page--; reload(); }}, "‹ Previous"),
        h("span", {}, `Page ${page} of ${pages}`),
        h("button", {type: "button", disabled: page >= pages, onclick: () => { page++; reload(); }}, "Next ›"));
    }
  }

  async function reload(quiet = false) {
    if (!container.isConnected && timer) { clearInterval(timer); timer = null; return; }
    const mine = ++serial;
    if (!quiet) { status.textContent = "Loading…"; status.className = "list-status loading"; }
    try {
      const params = {...(spec.params ? spec.params() : {}), page, pagesize: pageSize};
      if (keyword) params.keyword = keyword;
      const {items, count} = await api.list(spec.command, spec.key, params);
      if (mine !== serial) return;
      const signature = JSON.stringify([page, pageSize, count, items]);
      if (quiet && signature === shown) return;
      shown = signature;
      render(items, count);
    } catch (err) {
      if (mine !== serial) return;
      shown = null;
      status.textContent = `Could not load: ${err.message}`;
      status.className = "list-status error";
    }
  }
  if (spec.refreshMs) timer = setInterval(() => reload(true), spec.refreshMs);
  reload();
  return {reload};
}

/** Label/value pairs of one object. rows: [[label, value | Node]]. */
export function details(rows) {
  return h("dl", {class: "details"}, rows.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "")]));
}

/** A page header with a title and buttons. */
export function header(title, ...buttons) {
  return h("div", {class: "page-header"}, h("h1", {}, title), h("div", {class: "buttons"}, buttons));
}

/** Options for a select from a list command: [{value: id, label: name}]. */
export function options(command, key, params = {}, label = (r) => r.name) {
  return async () => (await api.all(command, key, params)).map((r) => ({value: r.id, label: label(r)}));
}
