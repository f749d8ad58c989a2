"""The widget in Jupyter Notebook 7 (its own frontend on the same server): hover, slider to kernel, pins."""

from __future__ import annotations

import json

import pytest

from tests.browser.chromium import browser_context
from tests.browser.jupyter import ARTIFACTS, PIPELINE, Kernel, jupyter_server, notebook
from tests.browser.widget_page import (
    check_grid_and_steps,
    check_the_constructor_shows_maps_forming,
    measure_swaps,
    overlay_alpha,
    overlay_pixels,
    wait_until,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("nb7")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cells = [f"{PIPELINE}\nw = DaamWidget(pipe, PROMPT, num_inference_steps=4)\nw"]
    with jupyter_server(root, lab_settings=False) as server, browser_context(browser) as context:
        (root / "work" / "nb7.ipynb").write_text(json.dumps(notebook(cells)))
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(f"{e}\n{e.stack}"))
        page.goto(server.page("notebooks/nb7.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        idle = "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
        page.wait_for_function(f"() => {idle}", timeout=120_000)
        assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        # Notebook 7.6 itself logs an error while it starts (a settings plugin without schema, in
        # notebook_core.js), before any widget exists: kept apart, so only what follows is ours.
        page.wait_for_timeout(1000)
        page.startup_errors, page.errors = page.errors, []
        (ARTIFACTS / "notebook7-startup-errors.txt").write_text("\n\n".join(page.startup_errors))
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.locator(".daam .daam-chip").first.wait_for(timeout=300_000)
        kernel = Kernel(server, "nb7.ipynb")
        try:
            yield page, kernel
        finally:
            kernel.close()


def test_notebook7_hover_slider_and_pins(notebook7):
    page, kernel = notebook7
    w = page.locator(".daam").first
    assert not any(overlay_alpha(w))
    w.locator(".daam-chip", has_text="circle").hover()
    first = overlay_pixels(w)
    assert any(first[3::4])
    w.locator(".daam-chip", has_text="square").hover()
    assert overlay_pixels(w) != first
    w.screenshot(path=str(ARTIFACTS / "notebook7-hover.png"))
    measure_swaps(w, "notebook7")
    w.locator(".daam-tau").fill("0.65")
    wait_until(page, lambda: kernel.eval("w.tau") == "0.65")
    assert kernel.eval("w.tau") == "0.65"
    page.mouse.move(1, 1)
    w.locator(".daam-chip", has_text="circle").click()
    w.locator(".daam-chip", has_text="square").click()
    assert w.locator(".daam-pinned-figure").count() == 2
    wait_until(page, lambda: kernel.eval("len(w.pinned)") == "2")
    assert kernel.eval("[w.words[k] for k in w.pinned]") == "['circle', 'square']"
    w.screenshot(path=str(ARTIFACTS / "notebook7-pinned.png"))
    check_grid_and_steps(page, "notebook7", "circle")
    assert page.errors == []


def test_notebook7_does_not_show_the_static_picture_beside_the_live_widget(notebook7):
    page, _ = notebook7
    pictures = page.locator(".jp-Cell .daam-fallback")
    assert pictures.count() == 1
    assert not pictures.first.is_visible()


def test_notebook7_arrow_keys_move_the_tau_slider(notebook7):
    page, kernel = notebook7
    slider = page.locator(".daam .daam-tau").first
    start = float(slider.input_value())
    slider.focus()
    page.keyboard.press("ArrowLeft")
    wait_until(page, lambda: abs(float(kernel.eval("w.tau")) - (start - 0.01)) < 1e-9)
    assert abs(float(kernel.eval("w.tau")) - (start - 0.01)) < 1e-9


def test_notebook7_the_constructor_cell_shows_the_widget_and_its_maps_while_the_first_image_is_generated(
    notebook7,
):
    page, _ = notebook7
    check_the_constructor_shows_maps_forming(page, "notebook7")
    assert page.errors == []


def test_notebook7_after_a_kernel_restart_the_widget_says_so_instead_of_failing(notebook7):
    """Last in this module: it restarts the kernel."""
    page, _ = notebook7
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    idle = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
    page.wait_for_function(f"() => {idle}", timeout=120_000)
    before = len(page.errors)
    w = page.locator(".daam").first
    w.locator(".daam-generate-button").click()
    w.locator(".daam-save-maps").click()
    message = w.locator(".daam-status")
    wait_until(page, lambda: "run its cell again" in (message.text_content() or ""))
    assert "run its cell again" in message.text_content()
    assert page.errors[before:] == []
