"""``/docs``: Swagger UI for the service's OpenAPI document, served from the package.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script: the
first breaks on a machine without the internet, the second is refused by the pages'
Content-Security-Policy (no inline script). Here the assets are the ones the
``fastapi-offline`` package ships (Swagger UI's release files, nothing else of it is
used), and the page starts Swagger UI with a script file of our own. The page carries a
policy of its own: scripts from this service only (Swagger UI is a script), still no
inline script, nothing from elsewhere.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Swagger UI styles elements from its script (React style props) and adds a few
        # style attributes; no script may run from them, so this is all they can do
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · API</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" href="{assets}/favicon.png">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="/static/swagger-start.js"></script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


def install_api_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = PAGE.format(title=app.title, assets=ASSETS, openapi_url=app.openapi_url)
        return HTMLResponse(page, headers={"Content-Security-Policy": POLICY})
