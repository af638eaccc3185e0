"""Serving the UI's files: read once from the package, answered with an ETag (a revalidation costs
a 304), ``Cache-Control: no-cache`` (an upgrade shows at once) and a strict Content-Security-Policy
(scripts, styles, images and API calls from this origin only; no inline script, no framing)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-cache"}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".json": "application/json"}
#: the longest asset path accepted (the files are few and short-named)
MAX_PATH = 200


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load() -> dict[str, Asset]:
    """Every file under ``static/``, keyed by its path relative to it (``js/app.js``)."""
    root = resources.files("hvcloud.server.web") / "static"
    found: dict[str, Asset] = {}

    def walk(node: object, prefix: str) -> None:
        for child in node.iterdir():  # type: ignore[attr-defined]
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
                continue
            body = child.read_bytes()
            suffix = "." + child.name.rsplit(".", 1)[-1] if "." in child.name else ""
            media = _TYPES.get(suffix) or mimetypes.guess_type(child.name)[0] or "application/octet-stream"
            found[name] = Asset(body, media, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    walk(root, "")
    return found


class AssetRoutes:
    """``GET /`` and ``/client/`` (the app's page) and ``GET /ui/{path}`` (its files)."""

    def __init__(self, assets: dict[str, Asset] | None = None) -> None:
        self.assets = load() if assets is None else assets

    def _answer(self, request: Request, asset: Asset) -> Response:
        headers = dict(SECURITY_HEADERS, ETag=asset.etag)
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    async def index(self, request: Request) -> Response:
        return self._answer(request, self.assets["index.html"])

    async def file(self, request: Request) -> Response:
        path = str(request.path_params.get("path", ""))
        asset = self.assets.get(path) if len(path) <= MAX_PATH and path != "index.html" else None
        if asset is None:
            return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)
        return self._answer(request, asset)
