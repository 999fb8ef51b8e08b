"""``/ui``: the memory inspector's static page, script and style sheet (shipped in the package).

The inspector is a browser client of the documented REST routes; these routes only serve its
three files, with no data in them, so they need no credential. Every answer carries a
Content-Security-Policy that allows scripts, styles and requests from this origin only (no
inline script, no other host), and is left out of the OpenAPI schema.
"""

from __future__ import annotations

import logging
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from ..errors import ApiError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui", tags=["inspector"], include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every inspector answer."""

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> bytes:
    """The bytes of one inspector file from the installed package.

    Raises:
        ApiError: 404 for a name that is not one of :data:`ASSETS`.
    """
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no inspector file {name!r}")
    return resources.files("mem_adapters.server").joinpath("ui", name).read_bytes()


@router.get("")
async def ui_root() -> Response:
    """``/ui`` → ``/ui/``."""
    return RedirectResponse("/ui/", status_code=307, headers=_HEADERS)


@router.get("/")
async def ui_index() -> Response:
    """The inspector page."""
    return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=_HEADERS)


@router.get("/{name}")
async def ui_file(name: str) -> Response:
    """The inspector's script or style sheet."""
    return Response(asset(name), media_type=ASSETS.get(name), headers=_HEADERS)
