"""``GET /docs``: Swagger UI rendering ``/openapi.json``, with every file served by this app.

Swagger UI's files come from the ``flask-swagger-ui`` package (its copy of Swagger UI's
distribution); only the files the page uses are served, by exact name, at
``/docs/static/<name>``, and any other name is the usual 404 problem. The page's
Content-Security-Policy allows this origin only (and ``data:`` images, which Swagger UI's
stylesheet uses for its icons), so nothing is ever loaded from anywhere else.

The asset URLs carry Swagger UI's version, so browsers may cache them for a year. The asset
route is the app's ``static`` endpoint: files, not part of the API that ``/openapi.json``
describes; ``/docs`` itself is described there.
"""

from __future__ import annotations

import base64
import hashlib
import html
from importlib import resources
from pathlib import Path

from flask import Blueprint, Flask, Response, send_file, url_for
from werkzeug.exceptions import NotFound

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "SWAGGER_UI_VERSION", "blueprint", "install_docs"]

_DIST = Path(str(resources.files("flask_swagger_ui").joinpath("dist")))
SWAGGER_UI_VERSION = (_DIST / "VERSION").read_text(encoding="ascii").strip().lstrip("v")

# name -> media type: the files the page loads, and nothing else of the distribution.
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
_ASSET_MAX_AGE_S = 365 * 24 * 3600

# The page's only inline script: constant, so the policy can allow it by hash. It reads the
# document's URL from the page, which knows the app's mount point.
_INIT_SCRIPT = (
    'window.addEventListener("load", function () {'
    ' var root = document.getElementById("swagger-ui");'
    " window.ui = SwaggerUIBundle({url: root.dataset.spec, domNode: root,"
    " deepLinking: true, validatorUrl: null});"
    " });"
)
_INIT_HASH = base64.b64encode(hashlib.sha256(_INIT_SCRIPT.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' 'sha256-{_INIT_HASH}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>shm-forecast API</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui" data-spec="{spec}"></div>
<script src="{bundle}"></script>
<script>{init}</script>
</body>
</html>
"""

blueprint = Blueprint("docs", __name__)


def _asset_url(name: str) -> str:
    return html.escape(url_for("static", filename=name, v=SWAGGER_UI_VERSION))


@blueprint.get("/docs")
def page() -> Response:
    """The Swagger UI page; its asset and document URLs follow the app's mount point."""
    body = _PAGE.format(
        favicon=_asset_url("favicon-32x32.png"),
        css=_asset_url("swagger-ui.css"),
        bundle=_asset_url("swagger-ui-bundle.js"),
        spec=html.escape(url_for("api.openapi")),
        init=_INIT_SCRIPT,
    )
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def asset(filename: str) -> Response:
    """One of :data:`ASSETS`, looked up by exact name (never joined to a path), else 404."""
    mimetype = ASSETS.get(filename)
    if mimetype is None:
        raise NotFound()
    response = send_file(_DIST / filename, mimetype=mimetype, max_age=_ASSET_MAX_AGE_S)
    response.cache_control.immutable = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install_docs(app: Flask) -> None:
    """Serve ``/docs`` and its assets from ``app``."""
    app.register_blueprint(blueprint)
    app.add_url_rule("/docs/static/<path:filename>", endpoint="static", view_func=asset)
