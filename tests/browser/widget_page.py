"""What the browser tests read from and do to a rendered widget, wherever it is (JupyterLab, a file)."""

from __future__ import annotations

import json
import pathlib
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
    for (let i = 0; i < 60; i++) {
        const chip = chips[i % chips.length];
        await new Promise((r) => requestAnimationFrame(r));
        const t0 = performance.now();
        chip.dispatchEvent(new PointerEvent('pointerover', { bubbles: true }));
        canvas.getContext('2d').getImageData(0, 0, 1, 1);  // the canvas holds the new map
        swaps.push(performance.now() - t0);
        await new Promise((r) => requestAnimationFrame(r));
        frames.push(performance.now() - t0);
        chip.dispatchEvent(new PointerEvent('pointerout', { bubbles: true }));
    }
    return { view, map_size: [canvas.height, canvas.width], swaps, frames };
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


def overlay_pixels(widget) -> list[int]:
    """The RGBA pixels of the main overlay canvas (the map drawn over the image)."""
    return widget.locator(".daam-stage canvas").first.evaluate(OVERLAY_PIXELS)


def overlay_alpha(widget) -> list[int]:
    """The alpha channel of the main overlay canvas: all 0 when no map is shown."""
    return overlay_pixels(widget)[3::4]


def measure_swaps(widget, where: str, view: str = "heat") -> dict:
    """Hover swaps timed in the page (event to the overlay drawn; and to the next frame), printed and saved
    to ``artifacts/browser/swap-<where>-<view>.json``."""
    times = widget.evaluate(SWAP_TIMES, view)
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
        f"\nhover swap ({where}, {view} view, maps {times['map_size'][0]}x{times['map_size'][1]}): median "
        f"{report['median_swap_ms']:.2f} ms, p95 {report['p95_swap_ms']:.2f} ms, "
        f"max {report['max_swap_ms']:.2f} ms; event to next frame {report['median_to_next_frame_ms']:.2f} ms"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"swap-{where}-{view}.json").write_text(json.dumps(report, indent=1))
    return report


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
    assert float(high.split()[2]) < float(low.split()[2]), "a higher tau keeps a smaller mask"
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
    assert page.evaluate("() => window.__alerts") == []
