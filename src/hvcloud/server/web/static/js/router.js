// Pages and the hash router: #/<page>[/<argument>]. Pages register themselves (pages/*.js).

const routes = new Map();

/**
 * Register a page. name: the hash path ("instances"); spec: {title, section, admin (operator only),
 * nav (listed in the menu; default true), render(view, arg): fills `view` (may be async)}.
 */
export function route(name, spec) {
  routes.set(name, {nav: true, admin: false, ...spec, name});
}

export function find(name) { return routes.get(name); }
export function all() { return [...routes.values()]; }

/** Where the browser is: {name, arg}. */
export function current() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return {name: decodeURIComponent(name || ""), arg: rest.length ? decodeURIComponent(rest.join("/")) : null};
}

/** Show a page; going to the page already shown renders it afresh (after a change it made). */
export function go(name, arg) {
  const hash = `#/${encodeURIComponent(name)}${arg ? "/" + encodeURIComponent(arg) : ""}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function link(name, text, arg) {
  const a = document.createElement("a");
  a.href = `#/${encodeURIComponent(name)}${arg ? "/" + encodeURIComponent(arg) : ""}`;
  a.textContent = text;
  return a;
}
