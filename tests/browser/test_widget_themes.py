"""The widget in JupyterLab's dark theme and in a narrow window: its text follows the theme's colours,
readable on the theme's background (WCAG's 4.5:1 for small text), and it fits a 700 px window with the
file browser open. Screenshots go to artifacts/browser/."""

from __future__ import annotations

import json

import pytest

from tests.browser.chromium import browser_context
from tests.browser.jupyter import ARTIFACTS, PIPELINE, jupyter_server, notebook

pytestmark = pytest.mark.browser

SMALL_TEXT = (
    ".daam-legend-detail",
    ".daam-mass-key",
    ".daam-message",
    ".daam-punct",
    ".daam-chip",
    ".daam-figure figcaption",
    ".daam-frame-label",
    ".daam-frame-key",
)

COLOURS = """(selectors) => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const backdrop = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
      if (a > 0) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(".daam " + selector)) {
      if (!el.checkVisibility() || !el.textContent.trim()) continue;
      const [r, g, b, a = 1] = rgb(getComputedStyle(el).color);
      const color = [r, g, b, a];
      out.push({ selector, text: el.textContent.trim().slice(0, 30), color, background: backdrop(el) });
    }
  }
  return out;
}"""


def _luminance(rgb):
    channels = [c / 255 for c in rgb]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(color, background):
    """WCAG contrast of ``color`` (r, g, b, alpha), drawn over ``background`` (r, g, b)."""
    *rgb, alpha = color
    seen = [alpha * c + (1 - alpha) * b for c, b in zip(rgb, background, strict=True)]
    high, low = sorted((_luminance(seen), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture(scope="module")
def dark(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("dark")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cells = [
        f"{PIPELINE}\nw = DaamWidget(pipe, PROMPT + ', beside a tree', num_inference_steps=3)\nw",
        "from daam_widget import testing\nclip = testing.moving_clip_maps(9, (96, 144), (12, 18))\n"
        "DaamWidget.from_heat_maps(clip, selected='dog')",
    ]
    with jupyter_server(root, theme="JupyterLab Dark") as server, browser_context(browser) as context:
        (root / "work" / "dark.ipynb").write_text(json.dumps(notebook(cells)))
        page = context.new_page()
        page.goto(server.page("lab/tree/dark.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        idle = "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
        page.wait_for_function(f"() => {idle}", timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.locator(".daam .daam-player:visible").first.wait_for(timeout=300_000)
        yield page


def test_in_the_dark_theme_every_small_text_is_readable_on_its_background(dark):
    page = dark
    assert page.evaluate("() => document.body.dataset.jpThemeLight") == "false", "the dark theme is on"
    page.locator(".daam .daam-chip").nth(1).click()  # pinned: the legend names it
    page.wait_for_timeout(300)
    found = page.evaluate(COLOURS, list(SMALL_TEXT))
    page.locator(".daam").first.screenshot(path=str(ARTIFACTS / "jupyterlab-dark.png"))
    page.locator(".daam").nth(1).screenshot(path=str(ARTIFACTS / "jupyterlab-dark-video.png"))
    assert {f["selector"] for f in found} >= {".daam-legend-detail", ".daam-chip", ".daam-frame-label"}, found
    print(sorted({(f["selector"], round(_contrast(f["color"], f["background"]), 2)) for f in found}))
    poor = [(f, round(_contrast(f["color"], f["background"]), 2)) for f in found]
    poor = [(f, c) for f, c in poor if c < 4.5]
    assert not poor, poor


def test_in_a_700_px_window_the_widget_fits_its_output_area_and_hovering_moves_nothing(dark):
    page = dark
    page.set_viewport_size({"width": 700, "height": 1000})
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    page.wait_for_timeout(500)
    output = page.locator(".jp-OutputArea-output:has(.daam)").first
    area, stage = output.bounding_box(), page.locator(".daam .daam-stage").first.bounding_box()
    assert area["width"] < 600, "the file browser takes part of the window"
    assert stage["x"] + stage["width"] <= area["x"] + area["width"] + 1, (stage, area)
    assert stage["height"] == pytest.approx(stage["width"], abs=2), "the image keeps its shape"
    page.mouse.move(5, 5)
    page.wait_for_timeout(200)
    words, root = page.locator(".daam .daam-words").first, page.locator(".daam").first

    def offset():  # of the words in the widget (hovering may scroll the notebook)
        return words.bounding_box()["y"] - root.bounding_box()["y"]

    resting = offset()
    page.locator(".daam .daam-chip").nth(2).hover()
    page.wait_for_timeout(200)
    assert page.locator(".daam .daam-legend-title").first.text_content() == "circle"
    assert offset() == resting, "the words stay where they were"
    page.locator(".daam").first.screenshot(path=str(ARTIFACTS / "jupyterlab-700px-dark.png"))
