"""/docs without a CDN: FastAPI's Swagger UI page loads its script and style from jsDelivr, which an
offline server (or a browser on a closed network) cannot reach. Here they come from the
``swagger-ui-py`` package when it is installed (``pip install swagger-ui-py``: Swagger UI 5, which
reads FastAPI's OpenAPI 3.1; its files are served at /docs/assets, its Python is never imported);
without it /docs is a plain page that lists the endpoints and links the schema (/openapi.json).
/redoc (a CDN page too) leads to /docs. (``swagger-ui-bundle`` ships Swagger UI 4, which cannot
render OpenAPI 3.1.)"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

DOCS, ASSETS, OAUTH2_REDIRECT = "/docs", "/docs/assets", "/docs/oauth2-redirect"


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's files, if the swagger-ui-py package is installed (located, not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() and (path / "swagger-ui.css").is_file() else None


def endpoint_list_html(app: FastAPI, openapi_url: str) -> str:
    """A page that needs nothing but itself: every endpoint with its summary, and the schema's link."""
    rows = []
    for path, methods in app.openapi().get("paths", {}).items():
        for method, op in methods.items():
            doc = html.escape(op.get("description") or op.get("summary") or "")
            rows.append(f"<h3><code>{method.upper()} {html.escape(path)}</code></h3><p>{doc}</p>")
    title = html.escape(f"{app.title} {app.version}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title} API</title></head>"
            f"<body style='font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto'>"
            f"<h1>{title} API</h1><p>The OpenAPI schema: <a href='{openapi_url}'>{openapi_url}</a>. "
            "The interactive page needs Swagger UI's files, which are not installed here "
            "(<code>pip install swagger-ui-py</code>).</p>" + "".join(rows) + "</body></html>")


def add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI from local files, or the plain list), its OAuth2 redirect, and /redoc.
    ``app`` must be made with ``docs_url=None, redoc_url=None`` (FastAPI's own pages use the CDN)."""
    assets = swagger_assets()
    if assets is not None:
        app.mount(ASSETS, StaticFiles(directory=assets), name="swagger-ui")

    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        openapi_url = root + (app.openapi_url or "/openapi.json")
        if assets is None:
            return HTMLResponse(endpoint_list_html(app, openapi_url))
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
                                   oauth2_redirect_url=root + OAUTH2_REDIRECT)

    async def oauth2_redirect(request: Request) -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + DOCS)

    app.add_route(DOCS, docs, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT, oauth2_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
