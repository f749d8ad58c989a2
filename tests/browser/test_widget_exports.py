"""Shared results in the browser, with no kernel: ``save_html`` opened from file:// with the network blocked,
and a notebook executed and exported by nbconvert (its widget manager served from local npm copies).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from daam_widget import DaamWidget, HeatMaps, testing
from daam_widget._words import layout_from_text
from tests.browser.chromium import CDN_COPIES, browser_context, need_cdn_copies, offline
from tests.browser.jupyter import ARTIFACTS, PIPELINE, notebook
from tests.browser.widget_page import (
    ALERT_SPY,
    check_without_kernel,
    measure_scrub,
    measure_swaps,
    nbconvert_html,
    overlay_pixels,
    wait_until,
)

pytestmark = pytest.mark.browser

PROMPT = "a red circle and a blue square"
XSS = "</script><img src=x onerror=alert(1)> a red star"


@pytest.fixture(scope="module")
def pipe():
    from daam_widget.toy import load_pipeline

    torch.set_num_threads(1)
    pipe = load_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def offline_context(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_context(browser) as context:
        network = offline(context, CDN_COPIES)
        context.add_init_script(ALERT_SPY)
        yield context, network


def open_page(context, path):
    page = context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    return page


def sd_sized_maps(size: int = 512) -> HeatMaps:
    """Maps at Stable Diffusion's 512 px (sent at 256 x 256): smooth blobs, one per word, and an image."""
    layout = layout_from_text(PROMPT, testing.clip_tokenizer())
    n = len(layout.used_positions)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    centres = torch.rand(n, 2, generator=torch.Generator().manual_seed(0))
    data = torch.stack([torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) for cy, cx in centres])
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return HeatMaps(data, layout.used_positions, layout, image=image)


def test_saved_html_hovers_and_thresholds_with_no_network_and_no_kernel(pipe, offline_context, tmp_path):
    context, network = offline_context
    path = DaamWidget(pipe, PROMPT, num_inference_steps=4).save_html(tmp_path / "widget.html")
    seen = len(network)
    page = open_page(context, path)
    w = page.locator(".daam")
    w.locator(".daam-chip").first.wait_for()
    assert w.locator(".daam-generate").is_hidden() and w.locator(".daam-save-maps").is_hidden()
    check_without_kernel(page, "save-html")
    assert network[seen:] == [] and page.errors == [], (network[seen:], page.errors)


def test_saved_html_swaps_256_pixel_maps_on_every_hover(offline_context, tmp_path):
    context, _ = offline_context
    w = DaamWidget.from_heat_maps(sd_sized_maps())
    assert tuple(w.map_size) == (256, 256) and len(w.maps) == len(w.words) * 65_536
    page = open_page(context, w.save_html(tmp_path / "sd.html"))
    element = page.locator(".daam")
    element.locator(".daam-chip").first.wait_for()
    measure_swaps(element, "save_html-256px", "heat")
    measure_swaps(element, "save_html-256px", "both")


def with_sd_sized_steps(w: DaamWidget, steps: int = 50, grid: int = 64) -> DaamWidget:
    """Give a widget a per-step record the size of Stable Diffusion's at 512 px: ``steps`` steps of every
    word's map on the 64x64 grid (blobs drifting over the steps)."""
    words = len(w.words)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, grid), torch.linspace(0, 1, grid), indexing="ij")
    maps = torch.stack(
        [
            torch.stack(
                [torch.exp(-((yy - t / steps) ** 2 + (xx - k / words) ** 2) / 0.02) for k in range(words)]
            )
            for t in range(steps)
        ]
    )
    with w.hold_sync():
        w.num_steps, w.step_grid = steps, (grid, grid)
        w.step_maps = (maps * 255).round().to(torch.uint8).numpy().tobytes()
        w.step_scales = np.ones((steps, words), "<f4").tobytes()
        w.step_mass = np.ones((steps, 1, words), "<f4").tobytes()
        w.resolutions = ["64x64"]
    return w


def test_saved_html_scrubs_sd_sized_steps(offline_context, tmp_path):
    context, _ = offline_context
    w = with_sd_sized_steps(DaamWidget.from_heat_maps(sd_sized_maps()))
    page = open_page(context, w.save_html(tmp_path / "sd-steps.html"))
    element = page.locator(".daam")
    element.locator(".daam-chip").first.wait_for()
    element.locator(".daam-chip").nth(1).click()
    page.mouse.move(1, 1)
    before = overlay_pixels(element)
    element.locator(".daam-scrubber").fill("10")
    assert overlay_pixels(element) != before, "step 11 of 50 is drawn"
    measure_scrub(element, "save_html-sd-50-steps")
    assert page.errors == []


def test_saved_html_shows_the_prompt_as_text_and_runs_nothing(pipe, offline_context, tmp_path):
    context, _ = offline_context
    path = DaamWidget(pipe, XSS, num_inference_steps=2).save_html(tmp_path / "xss.html")
    page = open_page(context, path)
    words = page.locator(".daam-words")
    words.locator(".daam-chip").first.wait_for()
    assert words.text_content() == XSS
    assert page.title() == f"DAAM: {XSS}"
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.evaluate("() => window.__alerts") == []
    assert page.errors == []


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A notebook executed by nbconvert (widget state stored by nbclient), then exported to HTML."""
    need_cdn_copies()
    root = tmp_path_factory.mktemp("nbconvert")
    source = root / "export.ipynb"
    cells = [
        f"{PIPELINE}\nw = DaamWidget(pipe, PROMPT, num_inference_steps=4, tau=0.5)\nw",
        "w.pinned = ['circle', 'square']",
    ]
    source.write_text(json.dumps(notebook(cells)))
    return nbconvert_html(source, root, execute=True)


def test_nbconvert_export_renders_the_widget_from_local_copies_of_its_manager(exported, offline_context):
    context, network = offline_context
    seen = len(network)
    page = open_page(context, exported)
    w = page.locator(".daam")
    w.locator(".daam-chip").first.wait_for(timeout=60_000)
    assert w.locator(".daam-chip.daam-pinned").all_text_contents() == ["circle", "square"], "the saved pins"
    assert w.locator(".daam-tau-value").text_content() == "0.50", "the saved tau"
    page.screenshot(path=str(ARTIFACTS / "nbconvert-page.png"), full_page=True)
    check_without_kernel(page, "nbconvert")
    w.locator(".daam-generate-button").click()
    page.wait_for_function(
        "() => document.querySelector('.daam-status').textContent.startsWith('No answer from the kernel')",
        timeout=10_000,
    )
    assert page.errors == []
    fetched = network[seen:]
    assert any("html-manager/dist/embed-amd.js" in line for line in fetched), fetched
    assert any("anywidget/dist/index.js" in line for line in fetched), fetched
    assert all(line.startswith("local") or "mathjax" in line for line in fetched), fetched


def test_nbconvert_export_without_the_widget_scripts_shows_a_static_picture(exported, browser):
    with browser_context(browser) as context:
        network = offline(context)  # nothing from the network: the widget manager cannot load
        page = open_page(context, exported)
        fallback = page.locator(".daam-fallback")
        fallback.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.locator(".daam").count() == 0, "no widget without its scripts"
        assert (
            fallback.is_visible() and "interactive view needs the widget's scripts" in fallback.text_content()
        )
        size = fallback.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
        assert size[0] >= 600 and size[1] > 100, "the image and every word's map"
        page.screenshot(path=str(ARTIFACTS / "nbconvert-offline-fallback.png"), full_page=True)
        assert any(line.startswith("blocked") for line in network)


def test_the_static_picture_is_hidden_where_the_widget_renders(exported, offline_context):
    context, _ = offline_context
    page = open_page(context, exported)
    page.locator(".daam .daam-chip").first.wait_for(timeout=60_000)
    assert page.locator(".daam-fallback").count() == 1 and page.locator(".daam-fallback").is_hidden()


# VS Code's notebook webview puts every output of a cell in one document, in
# div.cell_container#<cell> > div.output_container > div.output#<output> (microsoft/vscode,
# src/vs/workbench/contrib/notebook/browser/view/renderers/webviewPreloads.ts), text/html as innerHTML, and
# renders outputs when idle, so the static picture may come before or after the widget.
VSCODE_CELLS = """
<div id="container" class="widgetarea">
  <div class="cell_container" id="cell-1">
    {before}<div class="output_container"><div class="output" id="widget-output">{widget}</div></div>
  </div>
  <div class="cell_container" id="cell-2">
    <div class="output_container"><div class="output">{picture}</div></div>
  </div>
</div>
<script>
setTimeout(() => {{
  const output = document.createElement('div');
  output.className = 'output_container';
  output.innerHTML = '<div class="output">' + {later} + '</div>';
  document.getElementById('cell-1').append(output);
}}, 300);
</script>
"""


def _in_page(page_html: str, body: str) -> str:
    """The save_html page with its widget's element inside ``body`` (``{widget}`` marks where)."""
    element = '<div id="daam-widget"></div>'
    assert element in page_html
    return page_html.replace(element, body.replace("{widget}", element))


def test_in_vs_codes_output_layout_the_picture_of_the_widgets_cell_is_hidden_before_and_after(
    offline_context, tmp_path
):
    from daam_widget._html_export import fallback_bundle

    context, _ = offline_context
    maps = sd_sized_maps(64)
    picture = fallback_bundle(maps, 0.4, PROMPT)["text/html"]
    page_html = DaamWidget.from_heat_maps(maps).save_html(tmp_path / "w.html").read_text()
    cells = VSCODE_CELLS.format(
        before=f'<div class="output_container"><div class="output">{picture}</div></div>',
        widget="{widget}",
        picture=picture,
        later=json.dumps(picture),
    )
    path = tmp_path / "vscode.html"
    path.write_text(_in_page(page_html, cells))
    page = open_page(context, path)
    page.locator(".daam .daam-chip").first.wait_for()
    pictures = page.locator("#cell-1 .daam-fallback")
    wait_until(page, lambda: pictures.count() == 2)
    assert pictures.count() == 2 and [pictures.nth(k).is_visible() for k in range(2)] == [False, False], (
        "the picture shown before the widget and the one added after it are hidden"
    )
    assert page.locator("#cell-2 .daam-fallback").is_visible(), "another cell's picture is not the widget's"
    assert page.errors == []


def test_in_an_output_frame_of_its_own_as_colab_gives_a_cell_the_picture_is_hidden(offline_context, tmp_path):
    """Colab renders each cell's outputs in a sandboxed frame of their own (googlecolab/colabtools'
    outputframe); in it, the widget hides the picture found anywhere in the frame's page."""
    from daam_widget._html_export import fallback_bundle

    context, _ = offline_context
    maps = sd_sized_maps(64)
    picture = fallback_bundle(maps, 0.4, PROMPT)["text/html"]
    page_html = DaamWidget.from_heat_maps(maps).save_html(tmp_path / "w.html").read_text()
    (tmp_path / "frame.html").write_text(_in_page(page_html, f"<div>{picture}</div><div>{{widget}}</div>"))
    (tmp_path / "outer.html").write_text('<iframe src="frame.html" width="900" height="900"></iframe>')
    page = open_page(context, tmp_path / "outer.html")
    frame = page.frame_locator("iframe")
    frame.locator(".daam .daam-chip").first.wait_for()
    wait_until(page, lambda: frame.locator(".daam-fallback").is_hidden())
    assert frame.locator(".daam-fallback").count() == 1 and frame.locator(".daam-fallback").is_hidden()
    assert page.errors == []


def test_a_saved_video_plays_offline_and_the_dogs_map_moves_with_the_dog(offline_context, tmp_path):
    context, _ = offline_context
    maps = testing.moving_clip_maps(frames=9, size=(96, 144), grid=(12, 18), temporal_factor=4)
    path = DaamWidget.from_heat_maps(maps, selected="dog").save_html(tmp_path / "clip.html")
    page = open_page(context, path)
    element = page.locator(".daam")
    player = element.locator(".daam-player")
    player.wait_for(state="visible")
    label = player.locator(".daam-frame-label")

    def dog_x() -> float:
        """Where the dog's map peaks, from the overlay's brightness (inferno: dark to bright), as a share of
        the width."""
        canvas = element.locator(".daam-stage canvas").first
        width = canvas.evaluate("(c) => c.width")
        brightness = np.array(overlay_pixels(element)).reshape(-1, width, 4)[..., :3].sum(-1)
        return (np.unravel_index(brightness.argmax(), brightness.shape)[1] + 0.5) / width

    at_start = dog_x()
    player.locator(".daam-loop").uncheck()
    player.locator(".daam-play-frames").click()
    wait_until(page, lambda: label.inner_text().startswith("frame 9 of 9"))
    assert label.inner_text() == "frame 9 of 9 (latent frame 3 of 3)"
    at_end = dog_x()
    assert at_start < 0.3 < 0.7 < at_end, (at_start, at_end)  # the dog crosses from 0.15 to 0.85
    element.screenshot(path=str(ARTIFACTS / "save_html-video.png"))
    assert page.errors == []
