"""Debian's chromium driven by Playwright, launched so that it works on a closed network."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("DAAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no chromium: apt-get install -y chromium (or set DAAM_CHROMIUM)")
    return path


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's chromium, headless, through Playwright (one per test session: see conftest.py)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path = chromium_path()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_context(browser, **options) -> Iterator:
    """A fresh context (its own cookies, storage and routes) of a launched chromium."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True, **options)
    try:
        yield context
    finally:
        context.close()


NODE_MODULES = pathlib.Path(__file__).resolve().parents[2] / "node_modules"

# What nbconvert's HTML fetches to render widgets, served from the npm packages in node_modules: the AMD
# loader, the widget manager (and its fonts), and anywidget's AMD module (the html-manager asks jsdelivr).
CDN_COPIES = [
    (
        re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[^/]+/require(\.min)?\.js"),
        "requirejs/require.js",
    ),
    (
        re.compile(r"https://unpkg\.com/@jupyter-widgets/html-manager@[^/]*/dist/(?P<file>[\w.-]+)"),
        "@jupyter-widgets/html-manager/dist/{file}",
    ),
    (
        re.compile(r"https://cdn\.jsdelivr\.net/npm/anywidget@[^/]*/dist/index(\.js)?"),
        "anywidget/dist/index.js",
    ),
]


def need_cdn_copies() -> None:
    """Skip (saying why) when node_modules lacks the packages that stand in for the CDN."""
    for package in ("requirejs", "@jupyter-widgets/html-manager", "anywidget"):
        if not (NODE_MODULES / package / "package.json").exists():
            pytest.skip(f"node_modules/{package} is missing: run `npm ci` (scripts/setup.sh does)")


def offline(context, copies: list | None = None) -> list[str]:
    """Block the network for a context: ``file:`` and ``data:``/``blob:`` pass, URLs matching ``copies``
    (pattern, path under node_modules) get the local file, everything else is aborted. Returns the list
    (filled as the pages run) of every URL that was aborted or served locally, prefixed by what happened.
    """
    log: list[str] = []

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
            return
        for pattern, path in copies or []:
            match = pattern.fullmatch(url.split("?")[0])
            if match:
                local = NODE_MODULES / path.format(**match.groupdict())
                log.append(f"local {url} -> {local.relative_to(NODE_MODULES)}")
                route.fulfill(path=str(local))
                return
        log.append(f"blocked {url}")
        route.abort("internetdisconnected")

    context.route("**/*", handle)
    return log
