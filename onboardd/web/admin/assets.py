"""The admin UI's static files: served from memory with a content hash in the address, a
year-long immutable cache and gzip, so a browser fetches each version once and the page works
offline from the daemon alone (no CDN). Files ship in the wheel under onboardd/web/static."""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from importlib import resources
from importlib.abc import Traversable

import msgspec
from aiohttp import web

PREFIX = "/admin/static"
IMMUTABLE = "public, max-age=31536000, immutable"
# Text is worth compressing; the few images are already compressed.
_COMPRESSIBLE = (".js", ".css", ".svg", ".txt", ".html", ".json", ".csv")


class Asset(msgspec.Struct, frozen=True):
    """One static file as served."""

    digest: str
    content_type: str
    body: bytes
    gzipped: bytes | None


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif entry.is_file() and not entry.name.startswith("."):
            found[name] = entry.read_bytes()
    return found


@functools.cache
def load_assets() -> dict[str, Asset]:
    """Every static file of the package by its path under static/: read and compressed once
    per process (the files ship with the package and do not change while it runs), however
    many apps are built."""
    root = resources.files("onboardd.web").joinpath("static")
    assets: dict[str, Asset] = {}
    for path, body in _walk(root).items():
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
            kind += "; charset=utf-8"
        packed = (gzip.compress(body, 9, mtime=0) if path.endswith(_COMPRESSIBLE) else None)
        assets[path] = Asset(hashlib.sha256(body).hexdigest()[:12], kind, body, packed)
    return assets


class Assets:
    """The static files and their hashed addresses."""

    def __init__(self) -> None:
        self.files = load_assets()

    def url(self, path: str) -> str:
        """The address of a static file, with its content hash (templates call asset(...))."""
        asset = self.files.get(path)
        if asset is None:
            raise KeyError(f"no static file {path!r} under onboardd/web/static")
        return f"{PREFIX}/{asset.digest}/{path}"

    async def serve(self, request: web.Request) -> web.Response:
        """GET /admin/static/{digest}/{path}: an old digest still gets today's file, uncached."""
        asset = self.files.get(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound(text="no such file")
        current = request.match_info["digest"] == asset.digest
        headers = {"Cache-Control": IMMUTABLE if current else "no-cache",
                   "ETag": f'"{asset.digest}"', "Vary": "Accept-Encoding"}
        if request.headers.get("If-None-Match") == f'"{asset.digest}"':
            return web.Response(status=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers={**headers, "Content-Type": asset.content_type})
