"""``/docs``: Swagger UI served from an installed package, never from a CDN.

FastAPI's default page loads Swagger UI's script and style from a public CDN: an offline or
locked-down deployment gets a blank page, and every visitor's browser tells the CDN about it.
Here the page and its assets come from the ``swagger-ui-bundle-v2`` package (in the ``serve``
extra): ``/docs`` references only ``/docs/swagger-ui-bundle.js``, ``/docs/swagger-ui.css`` and
``/docs/favicon-32x32.png`` on this server. Without the package ``/docs`` answers 404 saying
how to install it; ``/openapi.json`` works either way.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from fti.errors import NotFoundError

__all__ = ["ASSETS", "install_docs"]

# name -> media type; nothing else under /docs/ is served
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _missing() -> NotFoundError:
    return NotFoundError(
        "Swagger UI is not installed on this server, so /docs is off. Install it with: "
        "pip install 'fti[serve]' (package swagger-ui-bundle-v2). The API description is at "
        "/openapi.json."
    )


@functools.cache
def _asset(name: str) -> bytes | None:
    try:
        bundle = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    path = bundle.swagger_ui_path / name
    return bytes(path.read_bytes()) if path.is_file() else None


def install_docs(app: FastAPI, *, title: str, dependencies: Sequence[Any]) -> None:
    """Add ``/docs`` and its assets to ``app`` (with the route dependencies of ``/docs``)."""

    @app.get("/docs", include_in_schema=False, dependencies=list(dependencies))
    async def docs() -> HTMLResponse:
        if _asset("swagger-ui-bundle.js") is None:
            raise _missing()
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon-32x32.png",
            # Swagger UI would send the API description to a public validator by default.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/{asset}", include_in_schema=False, dependencies=list(dependencies))
    async def docs_asset(asset: str) -> Response:
        media = ASSETS.get(asset)
        if media is None:
            raise NotFoundError(f"No /docs asset {asset[:64]!r}. Open /docs.")
        data = _asset(asset)
        if data is None:
            raise _missing()
        return Response(data, media_type=media, headers={"cache-control": "max-age=86400"})
