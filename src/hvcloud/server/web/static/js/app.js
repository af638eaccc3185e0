// The app's shell: the login page, the menu, and rendering the page the hash names.

import * as api from "./api.js";
import {clear, h} from "./dom.js";
import * as router from "./router.js";
import "./pages/index.js";

const root = document.getElementById("app");
let notice = "";

const SECTIONS = ["Overview", "Compute", "Storage", "Network", "Access", "Activity",
                  "Infrastructure", "Accounts", "Offerings"];

function loginPage() {
  document.title = "Log in · hvcloud";
  const error = h("p", {class: "form-error", role: "alert", hidden: !notice}, notice);
  notice = "";
  const user = h("input", {id: "login-username", name: "username", autocomplete: "username", required: true, autofocus: true});
  const pass = h("input", {id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true});
  const domain = h("input", {id: "login-domain", name: "domain", placeholder: "/", autocomplete: "off"});
  const submit = h("button", {type: "submit", class: "primary"}, "Log in");
  const form = h("form", {class: "login form", "aria-label": "Log in"},
    h("h1", {}, "hvcloud"),
    h("div", {class: "field"}, h("label", {for: "login-username"}, "Username"), user),
    h("div", {class: "field"}, h("label", {for: "login-password"}, "Password"), pass),
    h("div", {class: "field"}, h("label", {for: "login-domain"}, "Domain"), domain,
      h("small", {}, "The domain path, e.g. /customers/acme; leave empty for ROOT")),
    error, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await api.login(user.value.trim(), pass.value, domain.value.trim());
      if (!router.current().name) router.go("dashboard"); else render();
    } catch (err) {
      error.textContent = err.code === 531 || err.status === 401 || err.code === 401
        ? "Wrong username, password or domain." : err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  clear(root).append(h("main", {class: "login-page"}, form));
}

function menu(active) {
  const nav = h("nav", {class: "menu", "aria-label": "Main"});
  for (const section of SECTIONS) {
    const pages = router.all().filter((p) => p.nav && p.section === section && (!p.admin || api.isAdmin()));
    if (!pages.length) continue;
    nav.append(h("h2", {}, section), h("ul", {}, pages.map((p) =>
      h("li", {}, h("a", {href: `#/${p.name}`, "aria-current": p.name === active ? "page" : false}, p.title)))));
  }
  return nav;
}

function topbar() {
  const u = api.user();
  return h("header", {class: "topbar"},
    h("a", {class: "brand", href: "#/dashboard"}, "hvcloud"),
    h("span", {class: "who"}, `${u.username} · ${u.account}${api.isAdmin() ? " (admin)" : ""}`),
    h("button", {type: "button", class: "ghost", id: "logout", onclick: async () => {
      await api.logout();
      location.hash = "";
      render();
    }}, "Log out"));
}

async function render() {
  if (!api.user()) { loginPage(); return; }
  const {name, arg} = router.current();
  const page = router.find(name) || router.find("dashboard");
  if (!router.find(name)) { history.replaceState(null, "", "#/dashboard"); }
  const view = h("main", {class: "view", id: "view", tabindex: "-1"});
  clear(root).append(topbar(), h("div", {class: "body"}, menu(page.name), view));
  if (page.admin && !api.isAdmin()) {
    view.append(h("h1", {}, "Not available"), h("p", {}, "This page is for the cloud's operators."));
    return;
  }
  document.title = `${page.title} · hvcloud`;
  view.append(h("p", {class: "loading"}, "Loading…"));
  try {
    clear(view);
    await page.render(view, arg);
  } catch (err) {
    clear(view).append(h("h1", {}, page.title), h("p", {class: "list-status error", role: "alert"}, `Could not load: ${err.message}`));
  }
  view.focus({preventScroll: true});
}

window.addEventListener("hashchange", render);
window.addEventListener("hv:session-expired", () => { notice = "Your session has ended; please log in again."; loginPage(); });
render();
