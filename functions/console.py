"""The web console: the built single-page app in `console/dist`, served at `/console/`.

Same origin and identity as the API it calls. A path that names a file in the build is that
file (hashed assets cached for a year, gzip-compressed once in memory); any other path under
`/console/` is the app's page, so a deep link such as `/console/jobs/{id}` opens in the browser.
`/` leads to `/console/`. Without a build the console's paths answer 404 saying how to build it.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from shared.domain.errors import NotFound

# CONSOLE_DIST: another build to serve (developing the console against a running stack).
DIST = Path(os.environ.get("CONSOLE_DIST") or Path(__file__).resolve().parents[1] / "console" / "dist")
PREFIX = "/console/"

# The console loads only its own files and calls only its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in asset names
_REVALIDATE = "no-cache"
_COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".map", ".txt")


@lru_cache(maxsize=256)
def _load(path: Path, stamp: tuple[int, int]) -> tuple[bytes, bytes | None]:
    """A file's bytes and, for text worth compressing, their gzip (once per version of the file:
    `stamp` is its modification time and size, so a rebuild under a running app is served)."""
    data = path.read_bytes()
    packed = gzip.compress(data, 6, mtime=0) if path.suffix in _COMPRESSIBLE and len(data) > 512 else None
    return data, packed


def _file(dist: Path, relative: str) -> Path | None:
    """The build's file at `relative`, or None (never a path outside the build)."""
    if not relative or relative.endswith("/"):
        return None
    candidate = (dist / relative).resolve()
    if not candidate.is_relative_to(dist.resolve()) or not candidate.is_file():
        return None
    return candidate


def _is_page(relative: str) -> bool:
    """A path the app routes (no file extension, not under assets/), rather than a missing file."""
    last = relative.rsplit("/", 1)[-1]
    return not relative.startswith("assets/") and "." not in last


def _serve(path: Path, request: Request, cache: str) -> Response:
    info = path.stat()
    data, packed = _load(path, (info.st_mtime_ns, info.st_size))
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding", **SECURITY_HEADERS}
    if packed is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=media_type, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def install(api: FastAPI, dist: Path = DIST) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)

    @router.get("/console")
    def console_bare() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)

    @router.get("/console/{relative:path}")
    def console(relative: str, request: Request) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            raise NotFound("the console is not built: run `make console` (or `make run`)")
        found = _file(dist, relative)
        if found is not None:
            cache = _IMMUTABLE if relative.startswith("assets/") else _REVALIDATE
            return _serve(found, request, cache)
        if not _is_page(relative):
            raise NotFound(f"no console file {relative!r}")
        return _serve(index, request, _REVALIDATE)

    api.include_router(router)
