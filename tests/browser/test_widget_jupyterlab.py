"""The widget in a real JupyterLab 4, driven through Debian's chromium: hover, slider, pins, XSS, errors.

The notebook is built on the toy model. At the
end the notebook is saved with its widget state (JupyterLab's "save widget state" setting) and exported
by nbconvert; ``test_widget_exports.py`` opens exports in the browser.
"""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from tests.browser.chromium import CDN_COPIES, browser_context, need_cdn_copies, offline
from tests.browser.jupyter import ARTIFACTS, PIPELINE, Kernel, jupyter_server, notebook
from tests.browser.widget_page import (
    ALERT_SPY,
    OVERLAY_PIXELS,
    RUN_NEW_CELL,
    check_the_constructor_shows_maps_forming,
    check_without_kernel,
    contour_pixels,
    measure_scrub,
    measure_swaps,
    nbconvert_html,
    overlay_alpha,
    overlay_pixels,
    wait_until,
)

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)> a red star"
CELLS = [
    f"{PIPELINE}\nw = DaamWidget(pipe, PROMPT, num_inference_steps=4)\nw",
    f"xss = DaamWidget(pipe, {XSS!r}, num_inference_steps=2)\nxss",
    "bad = DaamWidget(pipe, 'a red star', num_inference_steps=2, negative_prompt=['one', 'two'])\nbad",
    "long = DaamWidget(pipe, ' '.join(['a red circle and a blue square'] * 9), num_inference_steps=2)\nlong",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("lab")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyter_server(root, save_widget_state=True) as server, browser_context(browser) as context:
        (root / "work" / "widget.ipynb").write_text(json.dumps(notebook(CELLS)))
        context.add_init_script(ALERT_SPY)
        page = context.new_page()
        page.dialogs = []
        page.errors = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(server.page("lab/tree/widget.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60_000
        )
        page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel?.status === 'idle'",
            timeout=120_000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(".jp-Cell:nth-child(3) .daam-error", state="visible", timeout=300_000)
        kernel = Kernel(server, "widget.ipynb")
        try:
            yield page, kernel, root
        finally:
            kernel.close()


def widget(page, k: int):
    return page.locator(".jp-Cell").nth(k).locator(".daam")


def test_the_static_picture_is_not_shown_beside_the_live_widget(lab):
    page, _, _ = lab
    pictures = page.locator(".jp-Cell .daam-fallback")
    assert pictures.count() >= 2, "each displayed widget comes with its static picture for offline readers"
    assert [pictures.nth(k).is_visible() for k in range(pictures.count())] == [False] * pictures.count()


def test_hover_overlays_the_words_map_and_leaving_restores_the_image(lab):
    page, _, _ = lab
    w = widget(page, 0)
    assert not any(overlay_alpha(w)), "no word is shown before hovering"
    w.locator(".daam-chip", has_text="circle").hover()
    assert any(overlay_alpha(w)), "hovering a word draws its map over the image"
    first = overlay_pixels(w)
    assert w.locator(".daam-legend-title").text_content() == "circle"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-hover.png"))
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-page.png"))
    w.locator(".daam-chip", has_text="square").hover()
    assert w.locator(".daam-legend-title").text_content() == "square"
    assert overlay_pixels(w) != first, "another word swaps in another map"
    page.mouse.move(5, 5)
    assert not any(overlay_alpha(w)), "leaving the word shows the plain image again"


def test_every_hover_swaps_in_a_map(lab):
    page, _, _ = lab
    measure_swaps(widget(page, 0), "jupyterlab")


def test_slider_sets_tau_in_the_kernel_and_shows_the_mask_area(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    w.locator(".daam-view").select_option("both")
    w.locator(".daam-tau").fill("0.7")
    w.locator(".daam-chip", has_text="red").hover()
    assert "τ = 0.70" in w.locator(".daam-area").text_content()
    wait_until(page, lambda: kernel.eval("w.tau") == "0.7")
    assert kernel.eval("w.tau") == "0.7"
    assert kernel.eval("w.view") == "'both'"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-mask.png"))


def test_arrow_keys_move_the_tau_slider_inside_jupyterlab(lab):
    page, kernel, _ = lab
    kernel.eval("setattr(w, 'tau', 0.5) or w.tau")
    slider = widget(page, 0).locator(".daam-tau")
    wait_until(page, lambda: slider.input_value() == "0.5")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_until(page, lambda: kernel.eval("w.tau") == "0.52")
    assert kernel.eval("w.tau") == "0.52"
    kernel.eval("setattr(w, 'tau', 0.4) or w.tau")


def test_kernel_changes_show_in_the_browser(lab):
    page, kernel, _ = lab
    kernel.eval("setattr(w, 'selected', 'square') or w.selected")
    w = widget(page, 0)
    page.mouse.move(5, 5)
    selected = w.locator(".daam-chip.daam-selected")
    selected.wait_for(timeout=10_000)
    assert selected.text_content() == "square"
    assert w.locator(".daam-legend-title").text_content() == "square", "the selected word's map is shown"
    kernel.eval("setattr(w, 'selected', None)")
    w.locator(".daam-chip.daam-selected").wait_for(state="detached", timeout=10_000)


def test_pinning_two_words_compares_them_side_by_side_and_as_argmax(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    w.locator(".daam-view").select_option("heat")
    w.locator(".daam-chip", has_text="circle").click()
    w.locator(".daam-chip", has_text="square").click()
    page.mouse.move(5, 5)
    assert w.locator(".daam-pinned-figure").count() == 2
    assert w.locator(".daam-chip.daam-pinned").all_text_contents() == ["circle", "square"]
    wait_until(page, lambda: kernel.eval("[w.words[k] for k in w.pinned]") == "['circle', 'square']")
    assert kernel.eval("[w.words[k] for k in w.pinned]") == "['circle', 'square']", "the kernel sees the pins"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-pinned.png"))
    w.locator(".daam-compare-mode").select_option("argmax")
    w.locator(".daam-argmax").wait_for()
    assert any(w.locator(".daam-argmax canvas").evaluate(OVERLAY_PIXELS)[3::4]), "the argmax map is drawn"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-argmax.png"))


def test_prompt_is_rendered_as_text_and_runs_nothing(lab):
    page, _, _ = lab
    w = widget(page, 1)
    w.locator(".daam-chip").first.wait_for()
    assert w.locator(".daam-words").text_content() == XSS
    assert w.locator(".daam-chip").all_text_contents()[:3] == ["img", "src", "x"]
    assert page.locator("img[src='x']").count() == 0
    assert w.locator(".daam-prompt").input_value() == XSS
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.evaluate("() => window.__alerts") == [], "the prompt ran script"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-xss.png"))


def test_errors_are_shown_inside_the_widget(lab):
    page, _, _ = lab
    error = widget(page, 2).locator(".daam-error")
    assert re.search(r"TypeError: `negative_prompt` should be the same type", error.text_content())


def test_scrubbing_steps_redraws_the_map_in_the_browser_and_the_kernel_follows(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    assert (
        w.locator(".daam-timeline").is_visible() and w.locator(".daam-scrubber").get_attribute("max") == "3"
    )
    page.mouse.move(5, 5)
    w.locator(".daam-view").select_option("heat")
    w.locator(".daam-chip", has_text="circle").hover()
    every = overlay_pixels(w)
    assert w.locator(".daam-mass-chart").is_visible(), "the word's attention per step and resolution"
    w.locator(".daam-scrubber").fill("0")
    w.locator(".daam-chip", has_text="circle").hover()
    first = overlay_pixels(w)
    assert first != every and "step 1 of 4" in w.locator(".daam-legend-detail").text_content()
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-step.png"))
    w.locator(".daam-scrubber").fill("2")
    w.locator(".daam-chip", has_text="circle").hover()
    assert overlay_pixels(w) not in (first, every), "step 3 is another map"
    wait_until(page, lambda: kernel.eval("w.steps") == "(2, 3)")
    assert kernel.eval("w.heat_maps.settings['steps']") == "[2]", "w.heat_maps is what the browser shows"
    w.locator(".daam-step-mode").select_option("cumulative")
    wait_until(page, lambda: kernel.eval("w.steps") == "(0, 3)")
    assert kernel.eval("(w.steps, w.step_mode)") == "((0, 3), 'cumulative')"
    measure_scrub(w, "jupyterlab")
    w.locator(".daam-all-steps").click()
    wait_until(page, lambda: kernel.eval("w.steps") == "(0, 0)")
    w.locator(".daam-chip", has_text="circle").hover()
    assert overlay_pixels(w) == every, "all four steps again"


def test_play_runs_through_every_step(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    w.locator(".daam-step-mode").select_option("single")
    w.locator(".daam-scrubber").fill("0")
    w.evaluate(
        """(el) => {
            window.daamStepsSeen = [];
            const label = el.querySelector('.daam-steps-label');
            new MutationObserver(() => window.daamStepsSeen.push(label.textContent))
                .observe(label, { childList: true, characterData: true, subtree: true });
        }"""
    )
    w.locator(".daam-play").click()
    page.wait_for_function(
        "() => window.daamStepsSeen.some((t) => t.includes('step 4 of 4'))", timeout=10_000
    )
    seen = page.evaluate("() => window.daamStepsSeen")
    assert list(dict.fromkeys(seen))[:3] == [f"showing step {k} of 4" for k in (2, 3, 4)], seen
    w.locator(".daam-all-steps").click()
    wait_until(page, lambda: kernel.eval("w.steps") == "(0, 0)")


def test_the_step_chart_lines_up_with_the_scrubber_and_a_click_on_a_bar_goes_to_its_step(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    kernel.eval("setattr(w, 'step_mode', 'single') or setattr(w, 'selected', 'circle')")
    w.locator(".daam-step-mode").select_option("single")
    chart, scrubber = w.locator(".daam-mass-chart"), w.locator(".daam-scrubber")
    wait_until(page, lambda: "circle" in w.locator(".daam-mass-key").text_content())
    box, track = chart.bounding_box(), scrubber.bounding_box()
    assert abs(box["x"] - track["x"]) < 1 and abs(box["width"] - track["width"]) < 1, (box, track)
    assert w.locator(".daam-axis").text_content() == "14", "the first and the last step are labelled"
    n = 4
    for t, other in ((0, 3), (3, 0), (1, 2)):
        x = box["x"] + 7 + t * (box["width"] - 14) / (n - 1)
        page.mouse.click(x, box["y"] + box["height"] / 2)
        wait_until(page, lambda t=t: kernel.eval("w.steps") == f"({t}, {t + 1})")
        assert kernel.eval("w.steps") == f"({t}, {t + 1})", "a click on step t's bar shows step t"
        scrubber.fill(str(other))
        page.mouse.click(x, track["y"] + track["height"] / 2)
        assert scrubber.input_value() == str(t), "the scrubber's thumb at step t stands over its bar"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-step-chart.png"))
    w.locator(".daam-all-steps").click()
    kernel.eval("setattr(w, 'selected', None)")


def test_a_step_is_drawn_at_the_maps_size_with_the_mask_of_its_exact_maps(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    page.mouse.move(5, 5)
    w.locator(".daam-view").select_option("mask")
    w.locator(".daam-tau").fill("0.4")
    w.locator(".daam-scrubber").fill("1")
    wait_until(page, lambda: kernel.eval("w.steps") == "(1, 2)")
    w.locator(".daam-chip", has_text="circle").hover()
    canvas = w.locator(".daam-stage canvas").first
    size = canvas.evaluate("(c) => [c.height, c.width]")
    assert size == json.loads(kernel.eval("list(w.map_size)")), (
        "a step's map is drawn at the maps' size, not on the coarse attention grid"
    )
    alpha = overlay_alpha(w)
    shown = [a != 166 for a in alpha]  # outside the mask the mask view dims the image (DIM_ALPHA)
    exact = json.loads(kernel.eval("w.heat_maps.mask('circle', 0.4).flatten().astype(int).tolist()"))
    both = sum(a and b for a, b in zip(shown, exact, strict=True))
    either = sum(a or b for a, b in zip(shown, exact, strict=True))
    assert both / either > 0.9, f"IoU {both / either:.3f} with the mask of the exact Eq. 6 maps of step 2"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-step-mask.png"))
    w.locator(".daam-all-steps").click()
    w.locator(".daam-view").select_option("heat")


def test_every_word_has_a_panel_in_the_grid_and_a_click_opens_it(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    tiles = w.locator(".daam-grid-tile")
    captions = tiles.locator("figcaption").all_text_contents()
    assert captions == ["a #1", "red", "circle", "and", "a #2", "blue", "square"], "repeats are numbered"
    page.mouse.move(5, 5)
    tiles.nth(2).click()
    wait_until(page, lambda: kernel.eval("w.selected") == "2")
    assert kernel.eval("w.selected") == "2" and w.locator(".daam-legend-title").text_content() == "circle"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-grid.png"))
    kernel.eval("setattr(w, 'selected', None)")


def test_a_grid_panel_opens_with_enter_and_space_inside_jupyterlab(lab):
    page, kernel, _ = lab
    tiles = widget(page, 0).locator(".daam-grid-tile")
    tiles.nth(5).focus()
    page.keyboard.press("Enter")
    wait_until(page, lambda: kernel.eval("w.selected") == "5")
    assert kernel.eval("w.selected") == "5"
    tiles.nth(1).focus()
    page.keyboard.press("Space")
    wait_until(page, lambda: kernel.eval("w.selected") == "1")
    assert kernel.eval("w.selected") == "1"
    assert page.locator(".jp-Notebook").get_attribute("class").count("jp-mod-editMode") == 0, (
        "Enter stayed in it"
    )
    kernel.eval("setattr(w, 'selected', None)")


def test_a_long_prompt_says_in_one_line_which_words_the_model_did_not_see_and_has_no_empty_panels(lab):
    page, kernel, _ = lab
    w = widget(page, 3)
    w.locator(".daam-chip").first.wait_for(timeout=300_000)
    chips = w.locator(".daam-chip")
    struck = w.locator(".daam-chip:disabled").count()
    assert chips.count() == 63 and struck > 0
    line = w.locator(".daam-cut")
    assert line.is_visible()
    assert line.text_content().startswith(
        f"{struck} of the prompt's 63 words come after the text encoder's window"
    )
    kernel.eval("setattr(long, 'grid', True) or long.grid")
    wait_until(page, lambda: w.locator(".daam-grid-tile").count() > 0)
    assert w.locator(".daam-grid-tile").count() == 63 - struck, "no panel for a word without a map"


def test_tau_draws_a_contour_in_the_heat_view(lab):
    page, _, _ = lab
    w = widget(page, 0)
    w.locator(".daam-view").select_option("heat")
    w.locator(".daam-tau").fill("0.3")
    w.locator(".daam-chip", has_text="circle").hover()
    low = contour_pixels(w)
    w.locator(".daam-tau").fill("0.9")
    w.locator(".daam-chip", has_text="circle").hover()
    high = contour_pixels(w)
    assert low > 0 and high > 0 and high != low, "the τ slider moves the outline drawn over the heat map"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-heat-contour.png"))
    w.locator(".daam-tau").fill("0.4")


def test_save_buttons_write_the_overlay_png_and_the_maps_file(lab):
    page, kernel, root = lab
    w = widget(page, 0)
    kernel.eval("setattr(w, 'selected', 'circle')")  # the shown word, once the pointer is on the button
    w.locator(".daam-chip.daam-selected", has_text="circle").wait_for(timeout=10_000)
    with page.expect_download() as download:
        w.locator(".daam-save-png").click()
    assert download.value.suggested_filename == "daam-circle.png"
    picture = Image.open(download.value.path())
    assert picture.format == "PNG" and picture.width >= 512, "64 px toy images are enlarged"
    assert picture.height >= picture.width + 40, "a band under the image: the word and a colour bar"
    picture.save(ARTIFACTS / "jupyterlab-exported-overlay.png")
    w.locator(".daam-save-maps").click()
    status = w.locator(".daam-status")
    page.wait_for_function("(el) => el.textContent.startsWith('saved maps to')", arg=status.element_handle())
    saved = list((root / "work").glob("daam_*.safetensors"))
    assert len(saved) == 1 and saved[0].name in status.text_content()


def test_generate_button_shows_progress_and_regenerates(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    w.evaluate(
        """(el) => {
            window.daamProgressSeen = [];
            new MutationObserver(() => {
                const row = el.querySelector('.daam-progress');
                if (!row.hidden) window.daamProgressSeen.push(row.textContent);
            }).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
        }"""
    )
    w.locator(".daam-prompt").fill("a blue square")
    w.locator(".daam-seed").fill("7")
    w.locator(".daam-generate-button").click()
    page.wait_for_function(
        "() => document.querySelector('.jp-Cell .daam-words')?.textContent === 'a blue square'",
        timeout=120_000,
    )
    assert kernel.eval("w.prompt") == "'a blue square'" and kernel.eval("w.seed") == "7"
    assert kernel.eval("w.heat_maps.words") == "('a', 'blue', 'square')"
    seen = page.evaluate("() => window.daamProgressSeen")
    assert any(re.match(r"step \d+ of 4", s) for s in seen), seen
    assert page.errors == []


LIVE_WATCH = """(el) => {
    window.daamLive = [];
    window.daamLiveStop = false;
    const tick = () => {
        const row = el.querySelector('.daam-progress');
        const canvas = el.querySelector('.daam-grid-tile canvas');
        if (!row.hidden && canvas) {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let hash = 0;
            for (let i = 0; i < data.length; i += 3) hash = (hash * 31 + data[i]) % 1000000007;
            window.daamLive.push([row.textContent, hash]);
        }
        if (!window.daamLiveStop) requestAnimationFrame(tick);
    };
    tick();
}"""


def test_maps_form_while_the_image_is_generated(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    w.evaluate(LIVE_WATCH)
    kernel.eval("w.generate(prompt='a blue square', seed=7, num_inference_steps=60) and None", timeout=300)
    page.evaluate("() => { window.daamLiveStop = true; }")
    live = page.evaluate("() => window.daamLive")
    frames = {hash for _, hash in live}
    assert len(frames) >= 2, (
        f"the first word's map changed while generating: {len(frames)} frame(s), {live[-3:]}"
    )
    assert any(re.match(r"step \d+ of 60", text) for text, _ in live)
    assert all(not text.startswith("step 60 ") for text, _ in live[:1]), "seen before the run ended"


IOU_IN_KERNEL = """
import numpy as np
def square_mask(maps, words, size):
    return np.frombuffer(maps, np.uint8).reshape(len(words), *size)[words.index("square")] >= 0.4 * 255
a = square_mask(w.maps, w.words, w.map_size)
b = square_mask(w.other_maps, w.other["words"], w.other["map_size"])
expected_iou = float((a & b).sum() / max((a | b).sum(), 1))
"""


def test_an_earlier_generation_is_compared_side_by_side_with_the_iou_of_a_word(lab):
    page, kernel, _ = lab
    w = widget(page, 0)
    items = w.locator(".daam-history-item")
    assert items.count() == int(kernel.eval("len(w.history)")) >= 3
    items.first.click()
    wait_until(page, lambda: kernel.eval("w.compare_to") == "0")
    panel = w.locator(".daam-history-compare")
    panel.locator("figure").nth(1).wait_for(timeout=10_000)
    assert panel.locator("figure").count() == 2 and panel.locator("img").count() == 2
    w.locator(".daam-chip", has_text="square").hover()
    text = w.locator(".daam-iou").text_content()
    shown = float(re.search(r"IoU of “square” at τ = 0.40: ([\d.]+)", text).group(1))
    kernel.eval(f"exec({IOU_IN_KERNEL!r})")
    expected = kernel.eval("expected_iou")
    assert shown == pytest.approx(float(expected), abs=5e-4), "the IoU the browser prints is the masks' IoU"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-history-compare.png"))
    note = w.locator(".daam-compare-steps")
    assert note.text_content() == "both over all their steps"
    w.locator(".daam-step-mode").select_option("single")
    w.locator(".daam-scrubber").fill("1")
    w.locator(".daam-chip", has_text="square").hover()
    assert note.text_content() == "both over the same steps (step 2 of 60 here)"
    assert panel.locator("figcaption").nth(1).text_content().endswith("step 2 of 4")
    w.locator(".daam-scrubber").fill("30")
    w.locator(".daam-chip", has_text="square").hover()
    assert note.text_content() == (
        "the other generation has 4 steps: it is shown over all of them, not over step 31 of 60"
    )
    w.locator(".daam-all-steps").click()
    w.locator(".daam-history-close").click()
    wait_until(page, lambda: kernel.eval("w.compare_to") == "-1")
    page.mouse.move(5, 5)


def test_the_saved_notebook_keeps_the_widget_state(lab):
    page, _, root = lab
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = root / "work" / "widget.ipynb"
    for _ in range(100):
        state = json.loads(saved.read_text())["metadata"].get("widgets", {})
        if state:
            break
        page.wait_for_timeout(100)
    models = state["application/vnd.jupyter.widget-state+json"]["state"]
    daam = [m for m in models.values() if m["state"].get("_anywidget_id", "").endswith("DaamWidget")]
    assert len(daam) == len(CELLS) and {m["state"]["prompt"] for m in daam} >= {"a blue square", XSS}
    (ARTIFACTS / "jupyterlab-saved.ipynb").write_text(saved.read_text())


def test_the_saved_notebook_exported_by_nbconvert_renders_the_widget_offline(lab, browser):
    need_cdn_copies()
    _, _, root = lab
    html = nbconvert_html(root / "work" / "widget.ipynb", root)
    with browser_context(browser) as context:
        network = offline(context, CDN_COPIES)
        context.add_init_script(ALERT_SPY)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.as_uri())
        page.locator(".daam .daam-chip").first.wait_for(timeout=60_000)
        assert page.locator(".daam").count() == len(CELLS), "every widget of the notebook renders"
        assert page.locator(".daam-words").nth(0).text_content() == "a blue square", (
            "the saved state is shown"
        )
        check_without_kernel(page, "nbconvert-jupyterlab", words=("blue", "square"))
        assert errors == []
    assert any("anywidget/dist/index.js" in line for line in network), network
    assert not [line for line in network if line.startswith("blocked") and "widget" in line], network


def test_the_constructor_cell_shows_the_widget_and_its_maps_while_the_first_image_is_generated(lab):
    """After the saved-notebook tests: it adds a cell."""
    page, _, _ = lab
    check_the_constructor_shows_maps_forming(page, "jupyterlab")
    assert page.errors == []


def test_the_maps_menu_shows_renormalised_maps_and_the_concept_box_concept_maps(lab):
    """After the saved-notebook tests: it adds a cell (a tiny Flux.1, whose family has concept maps)."""
    page, kernel, _ = lab
    w = widget(page, 0)
    assert w.locator(".daam-concepts").is_hidden(), "the toy is a UNet: no concept maps to offer"
    words = kernel.eval("w.words")
    w.locator(".daam-map-kind").select_option("renormalized")
    wait_until(page, lambda: kernel.eval("w.map_kind") == "'renormalized'")
    content = kernel.eval("w.words")
    assert content != words and "'a'" not in content, "the stop words are left out"
    expected = [x.strip().strip("'") for x in content.strip("[]").split(",")]
    wait_until(page, lambda: w.locator(".daam-chip").all_text_contents() == expected)
    assert w.locator(".daam-chip").all_text_contents() == expected, "the chips are the content words"
    assert w.locator(".daam-map-note").text_content().startswith("each pixel shared among")
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-renormalised.png"))
    w.locator(".daam-map-kind").select_option("daam")
    wait_until(page, lambda: kernel.eval("w.words") == words)
    kernel.eval("setattr(w, 'selected', 'square')")
    chart = w.locator(".daam-layer-chart")
    wait_until(page, lambda: "square: most concentrated in" in chart.text_content())
    assert chart.is_visible() and "square: most concentrated in" in chart.text_content()
    chart.locator("canvas").click(position={"x": 4, "y": 30})  # the first layer's bar
    first = kernel.eval("w.layer_names[0]")
    wait_until(page, lambda: kernel.eval("w.layer") == first)
    assert kernel.eval("w.layer") == first, "a click on a layer's bar shows that layer"
    w.screenshot(path=str(ARTIFACTS / "jupyterlab-layer-chart.png"))
    kernel.eval("setattr(w, 'selected', None)")
    last = kernel.eval("w.layer_names[-1]").strip("'")
    w.locator(".daam-layer").select_option(last)
    wait_until(page, lambda: kernel.eval("w.heat_maps.settings['layers']") == f"['{last}']")
    assert kernel.eval("w.layer") == f"'{last}'" and w.locator(".daam-layer").input_value() == last
    w.locator(".daam-layer").select_option("all")
    wait_until(page, lambda: kernel.eval("w.layer") == "'all'")

    code = (
        "from daam_widget import testing\nflux = testing.flux_pipeline()\n"
        "fw = DaamWidget(flux, 'a cat and a dog', num_inference_steps=2, max_sequence_length=24, height=32, "
        "width=48)\nfirst_image = fw.image\nfw"
    )
    page.evaluate(RUN_NEW_CELL, code)
    cell = page.locator(".jp-Notebook .jp-Cell").last
    box = cell.locator(".daam .daam-concepts")
    box.wait_for(state="visible", timeout=120_000)
    box.fill("cat, blue sky")
    box.press("Enter")
    wait_until(page, lambda: kernel.eval("fw.words") == "['cat', 'blue sky']", tries=1200)
    assert kernel.eval("fw.image == first_image") == "True", "the same seed: the same image"
    cell.locator(".daam-chip", has_text="blue sky").wait_for(timeout=30_000)
    assert cell.locator(".daam-map-kind").input_value() == "concepts"
    cell.locator(".daam-chip", has_text="blue sky").hover()
    assert any(overlay_alpha(cell.locator(".daam"))), "hovering a concept draws its map"
    cell.screenshot(path=str(ARTIFACTS / "jupyterlab-concepts.png"))
    assert page.errors == []


def test_a_video_plays_and_the_hovered_words_map_follows_the_frame(lab):
    page, kernel, _ = lab
    code = (
        "from daam_widget import testing\n"
        "clip = DaamWidget(testing.VIDEO_PIPELINES['wan'](), 'a red dog on a blue hat', "
        "num_inference_steps=3, **testing.VIDEO_CALLS['wan'])\nclip"
    )
    page.evaluate(RUN_NEW_CELL, code)
    clip = page.locator(".jp-Notebook .jp-Cell").last.locator(".daam")
    player = clip.locator(".daam-player")
    player.wait_for(state="visible", timeout=120_000)
    scrubber, label = player.locator(".daam-frame-scrubber"), player.locator(".daam-frame-label")
    assert scrubber.get_attribute("max") == "4" and label.inner_text() == "frame 1 of 5 (latent frame 1 of 3)"
    clip.locator(".daam-chip", has_text="dog").hover()
    first, first_image = overlay_pixels(clip), clip.locator(".daam-main .daam-stage img").get_attribute("src")
    bars = player.locator(".daam-frame-chart").evaluate(OVERLAY_PIXELS)
    assert any(bars[3::4]), "the word's share of each frame is drawn"
    player.locator(".daam-loop").uncheck()
    player.locator(".daam-play-frames").click()
    wait_until(page, lambda: label.inner_text().startswith("frame 5 of 5"))
    assert label.inner_text() == "frame 5 of 5 (latent frame 3 of 3)"
    wait_until(page, lambda: kernel.eval("clip.frame") == "4")
    assert kernel.eval("clip.frame") == "4", "the frame reaches the kernel when the playing stops"
    clip.locator(".daam-chip", has_text="dog").hover()
    assert overlay_pixels(clip) != first, "the last frame shows its own latent frame's map"
    assert clip.locator(".daam-main .daam-stage img").get_attribute("src") != first_image
    kernel.eval("setattr(clip, 'frame', 1) or clip.frame")
    wait_until(page, lambda: scrubber.input_value() == "1")
    assert label.inner_text() == "frame 2 of 5 (latent frame 2 of 3)"
    clip.screenshot(path=str(ARTIFACTS / "jupyterlab-video.png"))
    assert page.errors == []
