"""The widget outside a live notebook: a self-contained HTML page, and the static picture a notebook
keeps beside the widget for readers whose page cannot load the widget's scripts (an export opened
offline, GitHub's viewer)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import pathlib
from typing import Any

from ._heat_maps import HeatMaps

_STATIC = pathlib.Path(__file__).parent / "static"

FALLBACK_CLASS = "daam-fallback"

WITHOUT_KERNEL = {"has_kernel": False, "can_generate": False, "status": "ready", "error": "", "message": ""}
"""What a page without a kernel says of itself: nothing to generate, nothing running."""


def standalone_page(state: dict[str, Any], title: str) -> str:
    """One HTML page that mounts the widget's bundle on its synced ``state``: no network, no kernel; a
    Content-Security-Policy allows inline script and images from data only. Binary traits travel
    base64-encoded beside the JSON of the others."""
    state = {k: v for k, v in state.items() if not k.startswith("_")} | WITHOUT_KERNEL
    binary = [k for k, v in state.items() if isinstance(v, bytes | bytearray | memoryview)]
    encoded = {k: base64.b64encode(bytes(state.pop(k))).decode("ascii") for k in binary}
    return _PAGE.format(
        title=html.escape(title),
        script=_script_safe((_STATIC / "standalone.js").read_text(encoding="utf-8")),
        state=_json_in_script(state),
        buffers=_json_in_script(encoded),
    )


def static_picture(maps: HeatMaps, tau: float, columns: int = 6, panel: float = 1.6) -> bytes:
    """PNG of the image and every word's map with its Eq. 7 outline at ``tau`` (matplotlib, no pyplot,
    so no figure is left for a notebook's inline backend to show)."""
    from matplotlib.figure import Figure

    from .plotting import plot_overlay

    words = [s for s in maps.spans if s.is_word]
    keys = [k for k, s in enumerate(words) if s.available]
    panels = len(keys) + 1
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(panel * columns, panel * rows + 0.1), dpi=100)
    axes = [figure.add_subplot(rows, columns, i + 1) for i in range(panels)]
    if maps.image is not None:
        axes[0].imshow(maps.image)
    axes[0].set_title("image", fontsize=9)
    axes[0].set_axis_off()
    texts = [w.text.casefold() for w in words]
    for ax, key in zip(axes[1:], keys, strict=True):
        plot_overlay(maps, key, ax=ax, tau=tau, cmap="inferno", alpha=0.6)
        repeats = texts.count(texts[key])
        number = f" #{texts[: key + 1].count(texts[key])}" if repeats > 1 else ""
        ax.set_title(f"{words[key].text}{number} (τ = {tau:g})", fontsize=9)
    figure.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fallback_bundle(maps: HeatMaps, tau: float, prompt: str) -> dict[str, str]:
    """The mime bundle of the static picture and a line on why it is static; the widget hides it when it
    renders."""
    source = "data:image/png;base64," + base64.b64encode(static_picture(maps, tau)).decode("ascii")
    html_text = (
        f'<div class="{FALLBACK_CLASS}">'
        f'<img src="{source}" alt="DAAM maps of every word of: {html.escape(prompt)}" style="max-width:100%">'
        "<p><em>A static picture of the DAAM maps. The interactive view needs the widget's scripts "
        "(Jupyter widgets and anywidget), which this page could not load: open the notebook in "
        "JupyterLab or Notebook 7 with daam-widget installed, or use DaamWidget.save_html.</em></p></div>"
    )
    return {"text/html": html_text, "text/plain": f"DaamWidget({prompt!r})"}


def _script_safe(text: str) -> str:
    """Script text that cannot close or open a tag inside <script> (``</script>``, ``<!--``)."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _json_in_script(value: Any) -> str:
    """JSON with ``<``, ``>`` and ``&`` escaped (``\\u003c``...): user text stays data inside <script>."""
    text = json.dumps(value)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; \
style-src 'unsafe-inline'; img-src blob: data:">
<title>{title}</title>
</head>
<body>
<div id="daam-widget"></div>
<script>{script}</script>
<script>
DaamWidget.mount(document.getElementById("daam-widget"), {state}, {buffers});
</script>
</body>
</html>
"""
