"""What the browser tests read from and do to a rendered widget, wherever it is (JupyterLab, a file)."""

from __future__ import annotations

import json
import pathlib
import re
import statistics
import subprocess
import sys
from collections.abc import Callable

from tests.browser.jupyter import ARTIFACTS, scratch_env

# window.alert is wrapped so that a script run by the prompt is seen even where no dialog would be.
ALERT_SPY = "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"

OVERLAY_PIXELS = """(canvas) =>
    Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)"""

SWAP_TIMES = """async (el, view) => {
    const chips = [...el.querySelectorAll('.daam-chip:not([disabled])')];
    const canvas = el.querySelector('.daam-stage canvas');
    const select = el.querySelector('.daam-view');
    select.value = view;
    select.dispatchEvent(new Event('change'));
    const swaps = [], frames = [];
    let drawn = 0;
    for (let i = 0; i < 60; i++) {
        const chip = chips[i % chips.length];
        await new Promise((r) => requestAnimationFrame(r));
        const t0 = performance.now();
        chip.dispatchEvent(new PointerEvent('pointerover', { bubbles: true }));
        canvas.getContext('2d').getImageData(0, 0, 1, 1);  // the canvas holds the new map
        swaps.push(performance.now() - t0);
        await new Promise((r) => requestAnimationFrame(r));
        frames.push(performance.now() - t0);
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        if (pixels.some((v, j) => j % 4 === 3 && v > 0)) drawn++;
        chip.dispatchEvent(new PointerEvent('pointerout', { bubbles: true }));
    }
    return { view, map_size: [canvas.height, canvas.width], swaps, frames, drawn };
}"""


SWAP_REPORTS: list[dict] = []  # printed at the end of the run (conftest.py)


def wait_until(page, condition: Callable[[], bool], tries: int = 100) -> None:
    """Poll ``condition`` every 100 ms, ``tries`` times at most; the caller asserts afterwards.

    Kernel round trips and redraws are asynchronous, so a check right after an action can run too early.
    """
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(100)


def mask_percent(text: str) -> float:
    """The mask's share of the image from the area line (``mask of “dog”: 12.5 % of the image ...``)."""
    return float(re.search(r"([\d.]+) % of the image", text).group(1))


def contour_pixels(widget) -> int:
    """White opaque pixels of the main overlay: the Eq. 7 outline drawn over the heat map."""
    rgba = overlay_pixels(widget)
    return sum(1 for i in range(0, len(rgba), 4) if rgba[i : i + 4] == [255, 255, 255, 255])


SCRUB_TIMES = """async (el) => {
    const scrubber = el.querySelector('.daam-scrubber');
    const canvas = el.querySelector('.daam-stage canvas');
    const steps = Number(scrubber.max) + 1;
    const swaps = [], frames = [];
    for (let i = 0; i < 40; i++) {
        await new Promise((r) => requestAnimationFrame(r));
        const t0 = performance.now();
        scrubber.value = String(i % steps);
        scrubber.dispatchEvent(new Event('input', { bubbles: true }));
        canvas.getContext('2d').getImageData(0, 0, 1, 1);
        swaps.push(performance.now() - t0);
        await new Promise((r) => requestAnimationFrame(r));
        frames.push(performance.now() - t0);
    }
    return { map_size: [canvas.height, canvas.width], swaps, frames };
}"""


def measure_scrub(widget, where: str) -> dict:
    """Step-scrubber moves timed in the page (input event to the overlay drawn; and to the next frame)."""
    return _report(widget.evaluate(SCRUB_TIMES), where, "scrub", f"scrub-{where}")


def _report(times: dict, where: str, view: str, artifact: str) -> dict:
    """Times of one measurement, printed, kept for the run's summary and saved under ``artifact``.json."""
    report = {
        "where": where,
        "view": view,
        "map_size": times["map_size"],
        "median_swap_ms": statistics.median(times["swaps"]),
        "p95_swap_ms": sorted(times["swaps"])[int(0.95 * len(times["swaps"]))],
        "max_swap_ms": max(times["swaps"]),
        "median_to_next_frame_ms": statistics.median(times["frames"]),
        "swaps_ms": times["swaps"],
    }
    SWAP_REPORTS.append(report)
    print(
        f"\n{view} ({where}, maps {times['map_size'][0]}x{times['map_size'][1]}): median "
        f"{report['median_swap_ms']:.2f} ms, p95 {report['p95_swap_ms']:.2f} ms, "
        f"max {report['max_swap_ms']:.2f} ms; event to next frame {report['median_to_next_frame_ms']:.2f} ms"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{artifact}.json").write_text(json.dumps(report, indent=1))
    return report


def overlay_pixels(widget) -> list[int]:
    """The RGBA pixels of the main overlay canvas (the map drawn over the image)."""
    return widget.locator(".daam-stage canvas").first.evaluate(OVERLAY_PIXELS)


def overlay_alpha(widget) -> list[int]:
    """The alpha channel of the main overlay canvas: all 0 when no map is shown."""
    return overlay_pixels(widget)[3::4]


def measure_swaps(widget, where: str, view: str = "heat") -> dict:
    """Hover swaps timed in the page (event to the overlay drawn; and to the next frame), printed and saved
    to ``artifacts/browser/swap-<where>-<view>.json``. Every hover must draw a map; the times are reported,
    not asserted (they measure the machine as much as the widget)."""
    times = widget.evaluate(SWAP_TIMES, view)
    assert times["drawn"] == 60, f"{60 - times['drawn']} of 60 hovers drew no map"
    return _report(times, where, view, f"swap-{where}-{view}")


def nbconvert_html(notebook: pathlib.Path, root: pathlib.Path, execute: bool = False) -> pathlib.Path:
    """``jupyter nbconvert --to html`` (``--execute``: run it first, as the headless demo does)."""
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(notebook)]
    if execute:
        command[4:4] = ["--execute", "--ExecutePreprocessor.timeout=600"]
    subprocess.run(command, env=scratch_env(root), check=True, capture_output=True, timeout=900)
    return notebook.with_suffix(".html")


def check_without_kernel(page, artifact: str, words: tuple[str, str] = ("circle", "square")) -> None:
    """Hovering swaps maps, the tau slider thresholds and pins compare, in a page with no kernel."""
    one, two = words
    w = page.locator(".daam").first
    w.locator(".daam-chip").first.wait_for(timeout=60_000)
    w.locator(".daam-view").select_option("heat")
    page.mouse.move(1, 1)
    assert not any(overlay_alpha(w))
    w.locator(".daam-chip", has_text=one).hover()
    assert any(overlay_alpha(w)), "hovering a word draws its map"
    first = overlay_pixels(w)
    w.locator(".daam-chip", has_text=two).hover()
    assert overlay_pixels(w) != first, "another word, another map"
    w.screenshot(path=str(ARTIFACTS / f"{artifact}-hover.png"))
    page.mouse.move(1, 1)
    assert not any(overlay_alpha(w)), "leaving shows the plain image"
    w.locator(".daam-view").select_option("mask")
    w.locator(".daam-tau").fill("0.2")
    w.locator(".daam-chip", has_text=one).hover()
    low = w.locator(".daam-area").text_content()
    dimmed_low = overlay_alpha(w).count(166)
    w.locator(".daam-tau").fill("0.8")
    w.locator(".daam-chip", has_text=one).hover()
    high = w.locator(".daam-area").text_content()
    assert "τ = 0.20" in low and "τ = 0.80" in high
    assert mask_percent(high) < mask_percent(low), "a higher tau keeps a smaller mask"
    assert overlay_alpha(w).count(166) > dimmed_low, "more of the image is dimmed outside the mask"
    w.screenshot(path=str(ARTIFACTS / f"{artifact}-mask.png"))
    page.mouse.move(1, 1)
    for word in words:
        if "daam-pinned" not in (w.locator(".daam-chip", has_text=word).get_attribute("class") or ""):
            w.locator(".daam-chip", has_text=word).click()
    w.locator(".daam-compare-mode").select_option("side")
    assert w.locator(".daam-pinned-figure").count() >= 2
    with page.expect_download() as download:
        w.locator(".daam-save-png").click()
    assert download.value.suggested_filename.startswith("daam-") and download.value.path().stat().st_size > 0
    check_grid_and_steps(page, artifact, one)
    assert page.evaluate("() => window.__alerts") == []


def check_grid_and_steps(page, artifact: str, word: str) -> None:
    """The grid has a panel per word, and the step scrubber redraws the word's map, with no kernel."""
    w = page.locator(".daam").first
    chips = w.locator(".daam-chip:not([disabled])").count()
    assert w.locator(".daam-grid-tile").count() == chips, "one small multiple per word"
    w.locator(".daam-view").select_option("heat")
    w.locator(".daam-chip", has_text=word).hover()
    every = overlay_pixels(w)
    w.locator(".daam-scrubber").fill("0")
    assert "step 1 of" in w.locator(".daam-steps-label").text_content()
    w.locator(".daam-chip", has_text=word).hover()
    assert overlay_pixels(w) != every, "step 1 alone is not the sum of every step"
    w.screenshot(path=str(ARTIFACTS / f"{artifact}-step.png"))
    w.locator(".daam-all-steps").click()
    w.locator(".daam-chip", has_text=word).hover()
    assert overlay_pixels(w) == every, "all steps again: the exact Eq. 6 maps"


LIVE_CELL_WATCH = """() => {
    window.daamBorn = [];
    window.daamBornStop = false;
    const tick = () => {
        const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
        const w = cells[cells.length - 1]?.querySelector('.daam');
        const row = w?.querySelector('.daam-progress');
        if (row && !row.hidden) {
            const canvas = w.querySelector('.daam-stage canvas');
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
            const image = w.querySelector('.daam-stage img');
            window.daamBorn.push({ progress: row.textContent, painted, image: !image.hidden,
                                   keys: w.querySelectorAll('.daam-key').length });
        }
        if (!window.daamBornStop) requestAnimationFrame(tick);
    };
    tick();
}"""

RUN_NEW_CELL = """async (code) => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    panel.content.activeCellIndex = panel.content.widgets.length - 1;
    await app.commands.execute('notebook:insert-cell-below');
    panel.content.activeCell.model.sharedModel.setSource(code);
    app.commands.execute('notebook:run-cell');  // not awaited: it settles when the cell has run
}"""


def check_the_constructor_shows_maps_forming(page, artifact: str) -> None:
    """A new last cell ``DaamWidget(pipe, ...)`` shows the widget while its first generation runs, with
    the progress and, before any word is hovered, where each word is placed so far; once done, one widget
    (not a second view from the cell's value) and its static picture hidden."""
    page.evaluate(LIVE_CELL_WATCH)
    code = "born = DaamWidget(pipe, 'a red circle and a blue square', num_inference_steps=150, seed=5)\nborn"
    page.evaluate(RUN_NEW_CELL, code)
    cell = page.locator(".jp-Notebook .jp-Cell").last
    cell.locator(".daam .daam-key").first.wait_for(timeout=120_000)
    if cell.locator(".daam-progress").is_visible():
        cell.screenshot(path=str(ARTIFACTS / f"{artifact}-generating.png"))
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=120_000,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].pop()"
        ".querySelector('.daam-stage img:not([hidden])')",
        timeout=30_000,
    )
    page.evaluate("() => { window.daamBornStop = true; }")
    seen = page.evaluate("() => window.daamBorn")
    live = [s for s in seen if re.match(r"step \d+ of 150", s["progress"]) and not s["image"]]
    assert live, f"the widget showed while its first generation ran: {seen[:3]}"
    assert any(s["painted"] > 0 and s["keys"] == 7 for s in live), (
        "with no word hovered, the maps so far are drawn (each word's colour, with its key), not an empty box"
    )
    cell.screenshot(path=str(ARTIFACTS / f"{artifact}-first-image.png"))
    assert cell.locator(".daam").count() == 1, "the cell's value is the widget already shown: one view"
    assert cell.locator(".daam-fallback").count() == 1 and not cell.locator(".daam-fallback").is_visible()
    assert cell.locator(".daam-progress").is_hidden()
