import time

import pytest

from tests.browser.chromium import chromium
from tests.browser.jupyter import ARTIFACTS
from tests.browser.widget_page import SWAP_REPORTS

STARTED = time.time()


@pytest.fixture(scope="session")
def browser():
    """One chromium for all browser tests; each test module opens its own contexts."""
    with chromium() as launched:
        yield launched


def pytest_terminal_summary(terminalreporter):
    """The screenshots this run wrote (light and dark themes, a 700 px notebook, ...) and the hover and
    scrub times measured in the browser, shown even when output is captured."""
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png") if p.stat().st_mtime >= STARTED)
    if shots:
        terminalreporter.section(f"screenshots written to {ARTIFACTS}")
        terminalreporter.write_line(", ".join(shots))
    if not SWAP_REPORTS:
        return
    terminalreporter.section("hover (60 swaps) and step-scrub (40 moves) times: event to overlay drawn")
    for r in SWAP_REPORTS:
        h, w = r["map_size"]
        terminalreporter.write_line(
            f"{r['where']:<18} {r['view']:<5} maps {h}x{w}: median {r['median_swap_ms']:.2f} ms, "
            f"p95 {r['p95_swap_ms']:.2f} ms, max {r['max_swap_ms']:.2f} ms"
        )
