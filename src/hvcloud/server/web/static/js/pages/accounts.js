// Accounts, users, roles and domains (operator pages).

import * as api from "../api.js";
import {badge, h, when} from "../dom.js";
import {route} from "../router.js";
import {confirmDialog, formDialog, header, listView, modal, run} from "../widgets.js";

const SECTION = "Accounts";
const ACCOUNT_TYPES = [{value: "0", label: "User"}, {value: "1", label: "Root admin"}];

const userFields = () => [
  {name: "username", label: "Username", required: true},
  {name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password"},
  {name: "firstname", label: "First name", required: true},
  {name: "lastname", label: "Last name", required: true},
  {name: "email", label: "Email", type: "email"},
];

const domainOptions = async () => (await api.all("listDomains", "domain")).map((d) => ({value: d.id, label: d.path || d.name}));

function isSelf(account) {
  const u = api.user();
  return !!u && (account.id === u.accountid || (account.name === u.account && account.domainid === u.domainid));
}

// ---------------------------------------------------------------- accounts

async function addAccount() {
  return formDialog({
    title: "Add an account", submitLabel: "Add account",
    intro: "An account owns resources; its first user is created with it.",
    fields: [
      {name: "account", label: "Account name", help: "Defaults to the username"},
      {name: "accounttype", label: "Role", type: "select", required: true, options: ACCOUNT_TYPES, value: "0"},
      {name: "domainid", label: "Domain", type: "select", required: true, options: domainOptions},
      ...userFields(),
    ],
    onSubmit: async (v) => (await api.call("createAccount", v)).account,
  });
}

function accountActions(a) {
  if (a.isdefault || isSelf(a)) return [];
  const state = String(a.state || "").toLowerCase();
  return [
    state === "enabled" && {label: "Disable", run: async () => {
      if (!await confirmDialog(`Disable account ${a.name}? Its users cannot log in and its VMs stop.`, "Disable")) return;
      await run(`Disabling ${a.name}`, (p) => api.callAsync("disableAccount", {id: a.id, lock: "false"}, p));
    }},
    state === "enabled" && {label: "Lock", run: () => run(`Locking ${a.name}`,
      (p) => api.callAsync("disableAccount", {id: a.id, lock: "true"}, p))},
    state !== "enabled" && {label: "Enable", run: () => run(`Enabling ${a.name}`, () => api.call("enableAccount", {id: a.id}))},
    {label: "Delete", danger: true, run: async () => {
      if (!await confirmDialog(`Delete account ${a.name}, its users and everything it owns (VMs, volumes, networks)? ` +
                               "This cannot be undone.", "Delete account")) return;
      await run(`Deleting ${a.name}`, (p) => api.callAsync("deleteAccount", {id: a.id}, p));
    }},
  ];
}

route("accounts", {
  title: "Accounts", section: SECTION, admin: true,
  render(view) {
    view.append(header("Accounts"));
    listView(view.appendChild(h("div")), {
      command: "listAccounts", key: "account", params: () => ({listall: "true"}),
      toolbar: [{label: "Add account", run: addAccount}],
      columns: [
        {label: "Name", field: "name"}, {label: "Role", field: "rolename"}, {label: "Domain", render: (a) => a.domainpath || a.domain},
        {label: "State", render: (a) => badge(a.state)},
        {label: "Users", render: (a) => (a.user || []).map((u) => u.username).join(", ")},
        {label: "VMs", render: (a) => (a.vmtotal !== undefined ? String(a.vmtotal) : "")},
        {label: "Created", render: (a) => when(a.created)},
      ],
      actions: accountActions,
    });
  },
});

// ---------------------------------------------------------------- users

async function addUser() {
  const accounts = await api.all("listAccounts", "account", {listall: "true"});
  return formDialog({
    title: "Add a user", submitLabel: "Add user",
    fields: [
      {name: "accountid", label: "Account", type: "select", required: true,
       options: accounts.map((a) => ({value: a.id, label: `${a.name} (${a.domainpath || a.domain})`}))},
      ...userFields(),
    ],
    onSubmit: async (v) => {
      const account = accounts.find((a) => a.id === v.accountid);
      const {accountid, ...rest} = v;
      return (await api.call("createUser", {...rest, account: account.name, domainid: account.domainid})).user;
    },
  });
}

/** Show a user's new keys once, in a dialog, with a note to copy the secret now. */
export function showKeys(username, keys) {
  const field = (label, value, id) => h("div", {class: "field"}, h("label", {for: id}, label),
    h("input", {id, value, readonly: true, class: "mono", onfocus: (ev) => ev.target.select()}));
  const body = h("div", {class: "form keys"},
    h("p", {}, `New API keys for ${username}. Copy the secret key now: this page does not show it again, ` +
              "and registering keys again replaces both."),
    field("API key", keys.apikey || "", "keys-api"), field("Secret key", keys.secretkey || "", "keys-secret"));
  return new Promise((resolve) => {
    const dialog = modal("API keys", body, [h("button", {type: "button", class: "primary", onclick: () => dialog.close()}, "Done")]);
    dialog.addEventListener("close", () => resolve(true));
  });
}

async function registerKeys(u) {
  const msg = u.apikey ? `Replace the API keys of ${u.username}? Scripts using the old keys stop working.`
    : `Generate API keys for ${u.username}?`;
  if (!await confirmDialog(msg, "Generate keys")) return;
  const keys = await run(`Generating keys for ${u.username}`, () => api.call("registerUserKeys", {id: u.id}));
  if (keys && keys.userkeys) await showKeys(u.username, keys.userkeys);
}

async function changePassword(u) {
  const self = api.user() && api.user().userid === u.id;
  return formDialog({
    title: `Change the password of ${u.username}`, submitLabel: "Change password",
    intro: "All of the user's sessions end" + (self ? ", yours included: you will log in again." : "."),
    fields: [
      {name: "password", label: "New password", type: "password", required: true, autocomplete: "new-password"},
      {name: "again", label: "The new password again", type: "password", required: true, autocomplete: "new-password"},
    ],
    onSubmit: async (v) => {
      if (v.password !== v.again) throw new Error("The two passwords differ");
      await api.call("updateUser", {id: u.id, password: v.password});
      return true;
    },
  });
}

function userActions(u) {
  const me = api.user();
  const self = me && (me.userid === u.id);
  const state = String(u.state || "").toLowerCase();
  const protectedUser = self || (u.isdefault && u.account === "admin");
  return [
    !protectedUser && state === "enabled" && {label: "Disable", run: () => run(`Disabling ${u.username}`,
      (p) => api.callAsync("disableUser", {id: u.id}, p))},
    !protectedUser && state === "enabled" && {label: "Lock", run: () => run(`Locking ${u.username}`,
      () => api.call("lockUser", {id: u.id}))},
    !protectedUser && state !== "enabled" && {label: "Enable", run: () => run(`Enabling ${u.username}`,
      () => api.call("enableUser", {id: u.id}))},
    {label: "Password", run: () => changePassword(u)},
    {label: "Keys", run: () => registerKeys(u)},
    !protectedUser && {label: "Delete", danger: true, run: async () => {
      if (!await confirmDialog(`Delete user ${u.username}? Their API keys and sessions end.`, "Delete user")) return;
      await run(`Deleting ${u.username}`, () => api.call("deleteUser", {id: u.id}));
    }},
  ];
}

route("users", {
  title: "Users", section: SECTION, admin: true,
  render(view) {
    view.append(header("Users"));
    listView(view.appendChild(h("div")), {
      command: "listUsers", key: "user", params: () => ({listall: "true"}),
      toolbar: [{label: "Add user", run: addUser}],
      columns: [
        {label: "Username", field: "username"},
        {label: "Name", render: (u) => [u.firstname, u.lastname].filter(Boolean).join(" ")},
        {label: "Account", field: "account"}, {label: "Role", field: "rolename"},
        {label: "State", render: (u) => badge(u.state)}, {label: "Email", field: "email"},
        {label: "API key", render: (u) => (u.apikey ? "yes" : "no")},
      ],
      actions: userActions,
    });
  },
});

// ---------------------------------------------------------------- roles and domains

route("roles", {
  title: "Roles", section: SECTION, admin: true,
  async render(view) {
    view.append(header("Roles"),
      h("p", {class: "intro"}, "hvcloud has two fixed roles, given by an account's type: Root admin (every API " +
        "command) and User (the commands for the account's own resources). The API has no listRoles or " +
        "createRole, so roles cannot be created or edited here. An account's role is chosen when it is created."));
    const accounts = await api.all("listAccounts", "account", {listall: "true"});
    const roles = new Map();
    for (const a of accounts) {
      const key = a.rolename || (String(a.accounttype) === "1" ? "Root Admin" : "User");
      if (!roles.has(key)) roles.set(key, {type: a.roletype || "", accounts: []});
      roles.get(key).accounts.push(a.name);
    }
    view.append(h("table", {class: "list"},
      h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Role"), h("th", {scope: "col"}, "Type"), h("th", {scope: "col"}, "Accounts"))),
      h("tbody", {}, [...roles.entries()].map(([name, r]) => h("tr", {},
        h("td", {}, name), h("td", {}, r.type), h("td", {}, `${r.accounts.length}: ${r.accounts.join(", ")}`))))));
  },
});

route("domains", {
  title: "Domains", section: SECTION, admin: true,
  render(view) {
    view.append(header("Domains"),
      h("p", {class: "intro"}, "The API lists domains but has no createDomain: new domains are not made here."));
    listView(view.appendChild(h("div")), {
      command: "listDomains", key: "domain", params: () => ({listall: "true"}), search: false,
      columns: [{label: "Name", field: "name"}, {label: "Path", field: "path"}, {label: "Level", field: "level"},
                {label: "Parent", field: "parentdomainname"}],
    });
  },
});
