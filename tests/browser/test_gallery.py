"""The gallery's frontend (``static/gallery.js``) in chromium, driven by a ``DaamGallery``'s own state: the
page is drawn from the traits, and a click, the filter and the pager set the traits the kernel acts on. The
kernel's side is played by the test: it applies what the page sets to the Python gallery and sends back its
traits, as the comm would."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import daam_widget
from daam_widget import DaamGallery
from tests.browser.chromium import browser_context, offline
from tests.browser.jupyter import ARTIFACTS, Kernel, jupyter_server, notebook

pytestmark = pytest.mark.browser

BUNDLE = Path(daam_widget.__file__).parent / "static" / "gallery.js"
PROMPTS = ["a red circle", "a blue square and a red star", "a photo of a green circle"]
TRAITS = ("items", "filter", "page", "pages", "matches", "total", "selected", "error")

PAGE = """<!doctype html><meta charset="utf-8"><div id="root"></div>
<script type="module">
const bundle = await import("data:text/javascript;base64,%(bundle)s");
const state = {};
const listeners = {};
window.__sets = [];
window.__update = (changes, thumbnails) => {
  Object.assign(state, changes);
  if (thumbnails !== undefined) {
    const raw = Uint8Array.from(atob(thumbnails), (c) => c.charCodeAt(0));
    state.thumbnails = new DataView(raw.buffer);
  }
  for (const key of [...Object.keys(changes), ...(thumbnails !== undefined ? ["thumbnails"] : [])])
    (listeners["change:" + key] || []).forEach((f) => f());
};
window.__update(%(state)s, "%(thumbnails)s");
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; window.__sets.push([k, v]); },
  save_changes: () => {},
  on: (event, f) => (listeners[event] ??= []).push(f),
  off: (event, f) => { listeners[event] = (listeners[event] || []).filter((g) => g !== f); },
  send: () => {},
};
bundle.default.render({ model, el: document.getElementById("root") });
window.__ready = true;
</script>"""


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    from daam_widget.toy import load_pipeline

    if not BUNDLE.exists():
        pytest.skip("static/gallery.js is not built: npm run build")
    out = tmp_path_factory.mktemp("gallery-browser")
    daam_widget.run(load_pipeline(), PROMPTS, out, steps=2, progress=False)
    return DaamGallery(out, page_size=2)


def state(g: DaamGallery) -> dict:
    return {k: getattr(g.grid, k) for k in TRAITS}


def kernel_round(page, g: DaamGallery) -> None:
    """Apply what the page set to the Python gallery, then send back every trait (as the comm would)."""
    for key, value in page.evaluate("() => window.__sets.splice(0)"):
        setattr(g.grid, key, value)
    thumbnails = base64.b64encode(bytes(g.grid.thumbnails)).decode()
    page.evaluate("([s, t]) => window.__update(s, t)", [state(g), thumbnails])


def test_the_gallery_draws_a_page_filters_pages_and_opens_an_image(browser, gallery, tmp_path):
    html = PAGE % {
        "bundle": base64.b64encode(BUNDLE.read_bytes()).decode(),
        "state": json.dumps(state(gallery)),
        "thumbnails": base64.b64encode(bytes(gallery.grid.thumbnails)).decode(),
    }
    path = tmp_path / "gallery.html"
    path.write_text(html)
    with browser_context(browser) as context:
        network = offline(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_function("() => window.__ready === true")
        items = page.locator(".daam-gallery-item")
        assert items.count() == 2
        assert page.locator(".daam-gallery-prompt").all_text_contents() == PROMPTS[:2]
        page.wait_for_function("() => [...document.images].every((i) => i.complete && i.naturalWidth === 64)")
        assert page.locator(".daam-gallery-count").text_content() == "3 images, page 1 of 2"
        assert page.locator(".daam-gallery-previous").is_disabled()

        page.locator(".daam-gallery-next").click()
        kernel_round(page, gallery)
        assert page.locator(".daam-gallery-prompt").all_text_contents() == PROMPTS[2:]
        assert page.locator(".daam-gallery-next").is_disabled()

        page.locator(".daam-gallery-filter").fill("red")
        page.locator(".daam-gallery-filter").press("Enter")
        kernel_round(page, gallery)
        assert gallery.matching == [0, 1] and gallery.grid.page == 0
        assert page.locator(".daam-gallery-prompt").all_text_contents() == PROMPTS[:2]
        assert page.locator(".daam-gallery-count").text_content() == "2 of 3 images"

        items.nth(1).click()
        kernel_round(page, gallery)
        assert gallery.widget is not None and gallery.widget.prompt == PROMPTS[1]
        assert items.nth(1).evaluate("(e) => e.classList.contains('daam-selected')")
        assert errors == [] and network == []


GALLERY_CELL = """\
import torch
import daam_widget
from daam_widget import DaamGallery
from daam_widget.toy import load_pipeline

torch.set_num_threads(1)
daam_widget.run(load_pipeline(), {prompts!r}, "run", steps=2, progress=False)
g = DaamGallery("run", page_size=2)
g
"""


@pytest.mark.slow
def test_the_gallery_in_jupyterlab_filters_and_opens_an_image_in_a_daam_widget(browser, tmp_path):
    with jupyter_server(tmp_path, save_widget_state=False) as server, browser_context(browser) as context:
        (tmp_path / "work" / "gallery.ipynb").write_text(
            json.dumps(notebook([GALLERY_CELL.format(prompts=PROMPTS)]))
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.page("lab/tree/gallery.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        idle = "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
        page.wait_for_function(f"() => {idle}", timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        gallery = page.locator(".daam-gallery")
        gallery.locator(".daam-gallery-item").first.wait_for(timeout=300_000)
        kernel = Kernel(server, "gallery.ipynb")
        try:
            assert gallery.locator(".daam-gallery-prompt").all_text_contents() == PROMPTS[:2]
            gallery.locator(".daam-gallery-filter").fill("green")
            gallery.locator(".daam-gallery-filter").press("Enter")
            page.wait_for_function(
                "() => document.querySelector('.daam-gallery-count')?.textContent === '1 of 3 images'"
            )
            gallery.locator(".daam-gallery-item").first.click()
            page.locator(".daam .daam-chip").first.wait_for(timeout=60_000)
            assert kernel.eval("g.widget.prompt") == repr(PROMPTS[2])
            chips = page.locator(".daam .daam-chip").all_text_contents()
            assert "green" in chips and "circle" in chips
            page.screenshot(path=str(ARTIFACTS / "gallery-jupyterlab.png"))
        finally:
            kernel.close()
        assert errors == []
