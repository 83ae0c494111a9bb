"""``/docs`` through Flask's test client: a page that loads nothing from another origin, the
assets it names served from the package by exact name, and problem+json for anything else.
``tests/webapp/test_docs_browser.py`` runs the page in Chromium."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.webapp.conftest import make_app
from webapp.docs_page import ASSETS, SWAGGER_UI_VERSION

DIST = Path(str(resources.files("flask_swagger_ui").joinpath("dist")))
YEAR = 365 * 24 * 3600


class _Page(HTMLParser):
    """The URLs a page names (``src``, ``href``, ``data-spec``) and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in found.items() if k in {"src", "href", "data-spec"} and v]
        self._in_inline_script = tag == "script" and "src" not in found

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _policy(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.fixture
def client(window):
    return make_app(window).test_client()


def test_the_page_names_only_same_origin_urls(client):
    resp = client.get("/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = _parse(resp.get_data(as_text=True))
    assert page.urls, "the page names its assets and its document"
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    assert "/openapi.json" in page.urls
    assert {urlsplit(u).path for u in page.urls} - {"/openapi.json"} == {
        f"/docs/static/{name}" for name in ASSETS
    }


def test_the_policy_allows_this_origin_and_the_pages_own_script_only(client):
    resp = client.get("/docs")
    policy = _policy(resp.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    allowed = {"'self'", "'none'", "data:"}
    for name, sources in policy.items():
        extra = [s for s in sources if s not in allowed and not s.startswith("'sha256-")]
        assert extra == [], f"{name} allows {extra}"
        if name != "img-src":
            assert "data:" not in sources, name
    (script,) = _parse(resp.get_data(as_text=True)).inline_scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"


def test_every_asset_the_page_names_is_the_packages_file_cached_for_a_year(client):
    page = _parse(client.get("/docs").get_data(as_text=True))
    assets = [u for u in page.urls if u.startswith("/docs/static/")]
    assert len(assets) == len(ASSETS)
    for url in assets:
        parts = urlsplit(url)
        assert parts.query == f"v={SWAGGER_UI_VERSION}"
        name = parts.path.rsplit("/", 1)[1]
        # A WSGI server closes each response (and so its file); the test client leaves that
        # to its caller.
        with client.get(url) as resp:
            assert resp.status_code == 200, url
            assert resp.data == (DIST / name).read_bytes()
            assert resp.mimetype == ASSETS[name]
            assert resp.cache_control.public and resp.cache_control.max_age == YEAR
            assert resp.cache_control.immutable
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        with client.get(url, headers={"If-None-Match": resp.headers["ETag"]}) as again:
            assert again.status_code == 304 and again.data == b""
        with client.head(url) as head:
            assert head.status_code == 200 and head.data == b""


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/index.css",  # in the package, not used by the page
        "/docs/static/VERSION",
        "/docs/static/../VERSION",
        "/docs/static/%2e%2e/VERSION",
        "/docs/static/..%2fVERSION",
        "/docs/static/dist/swagger-ui.css",
        "/docs/static/swagger-ui.css/",
        "/docs/static/SWAGGER-UI.CSS",
        "/docs/static/",
        "/docs/",
        "/static/swagger-ui.css",
    ],
)
def test_any_other_name_is_a_404_problem(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["type"] == "/problems/not-found"


def test_other_methods_are_405_problems(client):
    for path in ("/docs", "/docs/static/swagger-ui.css"):
        resp = client.post(path, json={})
        assert resp.status_code == 405 and resp.mimetype == "application/problem+json"
        assert "GET" in resp.headers["Allow"]


def test_urls_follow_the_apps_mount_point(client):
    html = client.get("/docs", base_url="http://localhost/forecast").get_data(as_text=True)
    urls = _parse(html).urls
    assert urls and all(u.startswith("/forecast/") for u in urls)
    assert "/forecast/openapi.json" in urls
