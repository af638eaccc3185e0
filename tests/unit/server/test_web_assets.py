"""The UI's files as the server serves them: the page at / and /client/, a strict CSP, ETags,
no path escapes."""

from __future__ import annotations

from typing import Any

import pytest

from hvcloud.server.web.assets import CSP, load


def test_the_page_is_served_at_the_root_and_client(http: Any) -> None:
    for path in ("/", "/client/", "/client"):
        resp = http.get(path)
        assert resp.status_code == 200, path
        assert '<script type="module" src="/ui/js/app.js"></script>' in resp.text
        assert resp.headers["content-security-policy"] == CSP
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP


def test_assets_revalidate_with_their_etag(http: Any) -> None:
    first = http.get("/ui/js/app.js")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/javascript")
    again = http.get("/ui/js/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/ui/js/app.js", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("path", ["/ui/../db/models.py", "/ui/%2e%2e/web/assets.py", "/ui/nothing.js",
                                  "/ui/index.html", "/ui/" + "a" * 300, "/ui/js/../../__init__.py", "/ui/"])
def test_nothing_outside_the_assets_is_served(http: Any, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 404, path
    assert "import" not in resp.text


def test_every_module_the_page_imports_ships() -> None:
    assets = load()
    assert {"index.html", "app.css", "js/app.js", "js/api.js", "js/widgets.js", "js/pages/index.js"} <= set(assets)
    # every relative import in every module names a shipped file
    import re

    for name, asset in assets.items():
        if not name.endswith(".js"):
            continue
        base = name.rsplit("/", 1)[0]
        for target in re.findall(r'^import .*?"(\.{1,2}/[^"]+)";$|^import "(\.{1,2}/[^"]+)";$',
                                 asset.body.decode(), re.M):
            rel = target[0] or target[1]
            parts = base.split("/")
            for piece in rel.split("/"):
                if piece == "..":
                    parts.pop()
                elif piece != ".":
                    parts.append(piece)
            assert "/".join(parts) in assets, f"{name} imports {rel}"
