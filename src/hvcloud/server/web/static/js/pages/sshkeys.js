// Access › SSH key pairs: list, create (the private key shown once), register a public key, delete.

import * as api from "../api.js";
import {h} from "../dom.js";
import {route} from "../router.js";
import {confirmDialog, formDialog, header, listView, run, toast} from "../widgets.js";

async function copy(text, area) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    area.focus();
    area.select();
    if (!document.execCommand("copy")) throw new Error("select the key and copy it by hand");
  }
}

/** The new private key, in a dialog that says it is the only time it is shown. */
function showPrivateKey(pair) {
  return new Promise((resolve) => {
    const area = h("textarea", {readonly: true, rows: 12, class: "private-key", spellcheck: "false",
                                "aria-label": `Private key of ${pair.name}`}, pair.privatekey);
    const copied = h("span", {class: "copied", role: "status"});
    const download = h("a", {class: "button", download: `${pair.name}.pem`,
                             href: URL.createObjectURL(new Blob([pair.privatekey], {type: "application/x-pem-file"}))},
                       "Download");
    const dialog = h("dialog", {class: "modal wide", "aria-label": `Private key of ${pair.name}`},
      h("h2", {}, `Key pair ${pair.name} created`),
      h("p", {class: "warning", role: "alert"},
        "This is the only time the private key is shown: the cloud does not keep it. Save it now."),
      h("p", {}, "Fingerprint: ", h("code", {}, pair.fingerprint || "")),
      area,
      h("div", {class: "buttons"},
        copied,
        h("button", {type: "button", onclick: async () => {
          try { await copy(pair.privatekey, area); copied.textContent = "Copied"; } catch (err) {
            copied.textContent = `Could not copy: ${err.message}`;
          }
        }}, "Copy"),
        download,
        h("button", {type: "button", class: "primary", onclick: () => dialog.close()}, "I have saved it")));
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      URL.revokeObjectURL(download.href);
      dialog.remove();
      resolve();
    });
    dialog.showModal();
    area.focus();
    area.select();
  });
}

async function createPair() {
  let made = null;
  await formDialog({
    title: "Create SSH key pair", submitLabel: "Create",
    intro: "The cloud makes a new key pair and shows you its private key once.",
    fields: [{name: "name", label: "Name", required: true, placeholder: "laptop"}],
    onSubmit: async (values) => {
      made = (await api.call("createSSHKeyPair", values)).keypair;
    },
  });
  if (made) await showPrivateKey(made);
}

async function registerKey() {
  return formDialog({
    title: "Register a public key", submitLabel: "Register",
    fields: [
      {name: "name", label: "Name", required: true},
      {name: "publickey", label: "Public key", type: "textarea", required: true, rows: 5,
       help: "OpenSSH format: ssh-ed25519 AAAA… , ssh-rsa AAAA… or ecdsa-sha2-…"},
    ],
    onSubmit: async (values) => {
      const pair = (await api.call("registerSSHKeyPair", values)).keypair || {};
      toast(`Key ${values.name} registered${pair.fingerprint ? ` (${pair.fingerprint})` : ""}`, "ok");
    },
  });
}

route("sshkeys", {
  title: "SSH key pairs", section: "Access",
  async render(view) {
    view.append(header("SSH key pairs"));
    const box = h("div");
    view.append(box);
    const admin = api.isAdmin();
    listView(box, {
      command: "listSSHKeyPairs", key: "sshkeypair",
      params: () => (admin ? {listall: true} : {}),
      columns: [
        {label: "Name", field: "name"},
        {label: "Fingerprint", render: (p) => h("code", {}, p.fingerprint || "")},
        admin ? {label: "Account", field: "account"} : null,
        admin ? {label: "Domain", field: "domain"} : null,
      ].filter(Boolean),
      empty: "No SSH key pairs yet. Create one, or register the public key you already use.",
      toolbar: [{label: "Create key pair", run: createPair}, {label: "Register public key", run: registerKey}],
      actions: () => [{label: "Delete", danger: true, run: async (p) => {
        if (!await confirmDialog(`Delete key pair ${p.name}? Instances that have it keep it.`, "Delete")) return;
        const params = {name: p.name};
        if (admin) Object.assign(params, {account: p.account, domainid: p.domainid});
        await run(`Deleting ${p.name}`, () => api.call("deleteSSHKeyPair", params));
      }}],
    });
  },
});
