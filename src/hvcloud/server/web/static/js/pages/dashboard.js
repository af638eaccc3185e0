import * as api from "../api.js";
import {h} from "../dom.js";
import {route, link} from "../router.js";
import {header} from "../widgets.js";

route("dashboard", {
  title: "Dashboard", section: "Overview",
  async render(view) {
    const u = api.user();
    view.append(header(`Welcome, ${u.firstname || u.username}`));
    const counts = h("ul", {class: "tiles"});
    view.append(counts);
    const tiles = [["Instances", "listVirtualMachines", "instances"], ["Volumes", "listVolumes", "volumes"],
                   ["Networks", "listNetworks", "networks"], ["SSH key pairs", "listSSHKeyPairs", "sshkeys"]];
    for (const [label, command, page] of tiles) {
      const value = h("strong", {}, "…");
      counts.append(h("li", {}, link(page, label), value));
      api.list(command, "x", {page: 1, pagesize: 1}).then((r) => { value.textContent = String(r.count); },
                                                           () => { value.textContent = "–"; });
    }
  },
});
