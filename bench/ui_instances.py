"""The web UI's instances list with many VMs (issue 18): a real server process and simulator agent
(``tests.support.vm_stack.simulator_cloud``), ``--vms`` instances deployed through the API
(``startvm=false``: the rows, NICs and volumes a deploy writes, without the agent's start), then
Debian's chromium logged in as the admin opens ``#/instances`` with 50 and with 500 rows a page.

Figures, p50 of ``--runs`` each, timed in the page with ``performance.now()``: ``open_ms`` from
setting the hash to the table holding the page's rows; ``next_ms`` from pressing the Next button to page 2's
rows. Baseline in the same run: ``bare_ms``, the page's own ``fetch`` of the same
listVirtualMachines call (same parameters, JSON parsed) — what the UI adds is the difference.

Usage: ``python -m bench.ui_instances [--vms 1000] [--runs 5] [--json]``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.browser import chrome
from tests.support.ui import Ui, ui_cloud

OPEN = """
const [size, done] = [arguments[0], arguments[arguments.length - 1]];
const t0 = performance.now();
location.hash = '#/instances';
const rows = () => document.querySelectorAll('.view table.list tbody tr').length;
(function wait() {
  if (rows() === size && !document.querySelector('.list-status.loading')) done(performance.now() - t0);
  else requestAnimationFrame(wait);
})();
"""

NEXT = """
const [size, done] = [arguments[0], arguments[arguments.length - 1]];
const next = [...document.querySelectorAll('.view .pager button')].find(b => b.textContent.startsWith('Next'));
const t0 = performance.now();
next.click();
const ready = () => document.querySelector('.view .pager span')?.textContent.startsWith('Page 2 ')
  && !document.querySelector('.list-status.loading')
  && document.querySelectorAll('.view table.list tbody tr').length === size;
(function wait() { if (ready()) done(performance.now() - t0); else requestAnimationFrame(wait); })();
"""

BARE = """
const [size, pagesize, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const key = JSON.parse(sessionStorage.getItem('hvcloud.session')).sessionkey;
const body = new URLSearchParams({command: 'listVirtualMachines', listall: 'true', details: 'min', page: '1',
                                  pagesize: String(pagesize), response: 'json', sessionkey: key});
const t0 = performance.now();
fetch('/client/api', {method: 'POST', body, credentials: 'same-origin'}).then(r => r.json()).then(j => {
  const n = (j.listvirtualmachinesresponse.virtualmachine || []).length;
  done(n === size ? performance.now() - t0 : -1);
});
"""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(cloud: Any, vms: int) -> float:
    cs = cloud.cs
    offering = cs.createServiceOffering(name="bench", displaytext="bench", cpunumber=1, cpuspeed=500,
                                        memory=128)["serviceoffering"]["id"]
    start = time.monotonic()

    def deploy(i: int) -> None:
        cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                zoneid=cloud.zone["id"], name=f"vm{i:05d}", startvm=False)

    with ThreadPoolExecutor(8) as pool:
        for done, _ in enumerate(pool.map(deploy, range(vms)), 1):
            if done % 200 == 0:
                progress(f"{done} VMs")
    return time.monotonic() - start


def run(vms: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"vms": vms, "runs": runs}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp, ui_cloud(Path(tmp) / "cloud") as made:
        out["fill_s"] = round(fill(made.cloud, vms), 1)
        total = made.cloud.cs.listVirtualMachines(listall=True, page=1, pagesize=1)["count"]
        assert total >= vms, total
        with chrome(Path(tmp) / "artifacts") as browser:
            driver = browser.driver
            driver.set_script_timeout(120)
            ui = Ui(browser, made.base_url)
            ui.login("admin", made.admin_password)
            for size in (50, 500):
                browser.js("localStorage.setItem('hvcloud.pagesize.listVirtualMachines', arguments[0]);", str(size))
                first, second = min(size, total), min(size, max(total - size, 0))
                opens: list[float] = []
                nexts: list[float] = []
                bares: list[float] = []
                for i in range(runs):
                    ui.go("dashboard")
                    bares.append(float(driver.execute_async_script(BARE, first, size)))
                    opens.append(float(driver.execute_async_script(OPEN, first)))
                    if second:
                        nexts.append(float(driver.execute_async_script(NEXT, second)))
                    progress(f"page size {size}, run {i + 1}: open {opens[-1]:.0f} ms, "
                             f"next {nexts[-1] if nexts else 0:.0f} ms, bare {bares[-1]:.0f} ms")
                assert min(bares) > 0
                out[f"pagesize_{size}"] = {"open_ms": round(statistics.median(opens), 1),
                                           "next_ms": round(statistics.median(nexts), 1) if nexts else None,
                                           "bare_ms": round(statistics.median(bares), 1),
                                           "open_samples_ms": [round(v, 1) for v in opens],
                                           "next_samples_ms": [round(v, 1) for v in nexts],
                                           "bare_samples_ms": [round(v, 1) for v in bares]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.vms, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for size in (50, 500):
        r = result[f"pagesize_{size}"]
        print(f"{result['vms']} VMs, {size} a page: open p50 {r['open_ms']} ms, next page p50 {r['next_ms']} ms; "
              f"bare listVirtualMachines p50 {r['bare_ms']} ms")


if __name__ == "__main__":
    main()
