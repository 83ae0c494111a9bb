"""``/docs`` in a real browser: Debian's Chromium, driven by Playwright, against a real
Gunicorn serving a published window. The page must render the ``/predict`` operation and run
its "Try it out" with ``{}`` to a 200 and the window's forecast, with every request the
browser makes going to the server on 127.0.0.1 and nothing refused by the page's
Content-Security-Policy.

Chromium comes from Debian's ``chromium`` package (``make system-tools`` installs it as
root; CI has it); Playwright launches that executable and never one of its own. Without it
the test is skipped with that reason.

``DOCS_SCREENSHOT=<path>`` also saves the page, down to the rendered response, as a PNG:
``make docs-screenshot`` writes ``docs/img/docs-page.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, sync_playwright

from tests.webapp._support import GunicornServer, new_shm_window, remove_tree

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: `make system-tools` installs Debian's chromium "
    "package (needs root)",
)
pytestmark = [pytest.mark.server, needs_chromium]

LOOPBACK = "127.0.0.1"
SCREENSHOT = os.environ.get("DOCS_SCREENSHOT")


@pytest.fixture(scope="module")
def server(artifact: bytes) -> Iterator[GunicornServer]:
    window, parent = new_shm_window(artifact)
    window.publish(1000)
    window.write_status()
    srv = GunicornServer({"SHM_DIR": str(window.directory)}, workers=2)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
        window.close()
        remove_tree(parent)


def _try_it_out(page: Page, port: int) -> dict:
    """Load /docs, run "Try it out" on ``POST /predict`` with ``{}``: the rendered body."""
    assert page.goto(f"http://{LOOPBACK}:{port}/docs").status == 200
    operation = page.locator("#operations-default-post_predict")
    operation.wait_for()
    assert operation.locator(".opblock-summary-path").inner_text() == "/predict"

    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("textarea.body-param__text").fill("{}")
    operation.get_by_role("button", name="Execute").click()

    response = operation.locator(".live-responses-table .response")
    response.wait_for()
    assert response.locator(".response-col_status").inner_text().strip() == "200"
    return json.loads(response.locator(".response-col_description pre").first.inner_text())


def _save_screenshot(page: Page, path: str) -> None:
    """The page from its top to the bottom of the rendered response."""
    bottom = page.evaluate(
        """() => {
            const row = document.querySelector(".live-responses-table .response");
            return row.getBoundingClientRect().bottom + window.scrollY;
        }"""
    )
    width = page.viewport_size["width"] if page.viewport_size else 1280
    page.screenshot(
        path=path, full_page=True, clip={"x": 0, "y": 0, "width": width, "height": bottom + 2}
    )


def test_docs_renders_predict_and_its_try_it_out_answers_from_the_window(server):
    requested: list[str] = []
    problems: list[str] = []

    def loopback_only(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname == LOOPBACK:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", loopback_only)
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))

            page.set_default_timeout(15_000)
            try:
                rendered = _try_it_out(page, server.port)
            except PlaywrightError as exc:
                pytest.fail(f"{exc.message}\nbrowser errors: {problems}")
            if SCREENSHOT:
                _save_screenshot(page, SCREENSHOT)
        finally:
            browser.close()

    direct = server.post_json("/predict", {}).json()
    assert rendered["source"] == "window" and rendered["generation"] == direct["generation"]
    assert rendered["predictions"] == direct["predictions"] and len(rendered["predictions"]) == 1
    paths = [urlsplit(url).path for url in requested]
    assert {"/docs", "/openapi.json", "/predict"} <= set(paths)
    assert [url for url in requested if urlsplit(url).hostname != LOOPBACK] == []
    assert problems == []
