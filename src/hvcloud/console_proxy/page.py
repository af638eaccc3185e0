"""The console page: a small HTML shell, its script and style, served by the proxy itself.

The script loads noVNC from the proxy's ``/novnc/`` (Debian's package, never a CDN), connects to
``websockify`` on the same origin with the page's ``token``/``extra``, scales the screen to the
window and keeps ``window.hvConsole = {state, reason}`` up to date (``connecting``, ``connected``,
``disconnected``) for people and tests alike. No inline script or style: the CSP allows ``'self'``.
"""

from __future__ import annotations

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Console</title>
<link rel="stylesheet" href="console.css">
<script type="module" src="console.js"></script>
</head>
<body>
<div id="bar"><span id="title">Console</span> <span id="status">connecting</span></div>
<div id="screen"></div>
</body>
</html>
"""

CSS = """html, body { margin: 0; height: 100%; background: #111; color: #ddd; font: 14px sans-serif; }
body { display: flex; flex-direction: column; }
#bar { padding: 4px 8px; background: #222; flex: none; }
#status { color: #9c9; }
#status.bad { color: #e88; }
#screen { flex: 1; overflow: hidden; }
"""

SCRIPT = """import RFB from "./novnc/core/rfb.js";

const params = new URLSearchParams(window.location.search);
const statusText = document.getElementById("status");
const console_ = { state: "connecting", reason: "", name: "" };
window.hvConsole = console_;

function show(state, reason) {
    console_.state = state;
    if (reason) { console_.reason = reason; }
    statusText.textContent = console_.reason ? state + ": " + console_.reason : state;
    statusText.className = state === "disconnected" ? "bad" : "";
}

const query = new URLSearchParams();
query.set("token", params.get("token") || "");
if (params.has("extra")) { query.set("extra", params.get("extra")); }
const url = new URL("websockify", window.location.href);
url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
url.search = query.toString();
url.hash = "";

try {
    const rfb = new RFB(document.getElementById("screen"), url.href, { wsProtocols: ["binary"] });
    rfb.scaleViewport = true;
    rfb.resizeSession = false;
    rfb.viewOnly = params.get("viewonly") === "1";
    rfb.addEventListener("connect", () => show("connected"));
    rfb.addEventListener("securityfailure", (e) => show("disconnected", e.detail.reason || "refused"));
    rfb.addEventListener("disconnect", (e) => show("disconnected",
        e.detail.clean || console_.reason ? "" : "connection lost"));
    rfb.addEventListener("desktopname", (e) => {
        console_.name = e.detail.name;
        document.getElementById("title").textContent = e.detail.name;
        document.title = e.detail.name + " - console";
    });
    window.hvConsoleRfb = rfb;
} catch (err) {
    show("disconnected", String(err));
}
"""
