"""``DaamGallery(DIR)``: a dataset run's images as thumbnails in a notebook; click one to explore its maps.

Only the index is read when the gallery opens; a page's thumbnails are read when the page is shown (the
image alone, through safetensors' lazy reader), and a file's maps only when it is opened. A run of
10,000 images opens as fast as its index parses.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets as t

from ._files import read_image
from ._heat_maps import HeatMaps
from ._images import png
from ._run_files import read_index
from ._widget import DaamWidget

_STATIC = Path(__file__).parent / "static"
_WORD = re.compile(r"[^\W_]+")


class GalleryGrid(anywidget.AnyWidget):
    """The thumbnails of one page, a word filter and a pager (``js/gallery.ts``); ``DaamGallery`` fills it."""

    _esm = _STATIC / "gallery.js"

    items = t.List(
        t.Dict(), help="The shown page: {row, prompt, label, size (bytes of its PNG in `thumbnails`)}."
    ).tag(sync=True)
    thumbnails = t.Bytes(b"", help="The page's thumbnails, PNG files end to end in `items` order.").tag(
        sync=True
    )
    filter = t.Unicode("", help="Words every shown prompt contains (any case, whole words).").tag(sync=True)
    page = t.Int(0, help="The shown page, from 0.").tag(sync=True)
    pages = t.Int(0, help="Pages of the images that match the filter (read-only).").tag(sync=True)
    matches = t.Int(0, help="Images that match the filter (read-only).").tag(sync=True)
    total = t.Int(0, help="Images in the run (read-only).").tag(sync=True)
    selected = t.Int(None, allow_none=True, help="The index row opened below the grid, or None.").tag(
        sync=True
    )
    error = t.Unicode("", help="Why the last request failed ('' when it did not).").tag(sync=True)


class DaamGallery(ipywidgets.VBox):
    """A run's images (``daam-widget run ... --out DIR``), a page at a time, filtered by word;
    clicking one opens it below in ``DaamWidget.from_heat_maps``.

    >>> g = DaamGallery("runs/coco")
    >>> g.filter("dog")            # or type in the filter box
    >>> w = g.show(3)              # the DaamWidget of index row 3, as a click does
    """

    def __init__(self, out_dir: str | os.PathLike, page_size: int = 24, thumbnail_size: int = 128) -> None:
        if page_size < 1 or thumbnail_size < 8:
            raise ValueError(
                f"page_size must be 1 or more and thumbnail_size 8 or more, not {page_size}, {thumbnail_size}"
            )
        self.out_dir = Path(out_dir)
        self.rows = read_index(self.out_dir)
        """The run's index rows (``DIR/index.jsonl``), in prompt order."""
        self.page_size = page_size
        self.thumbnail_size = thumbnail_size
        self.grid = GalleryGrid(total=len(self.rows))
        self.widget: DaamWidget | None = None
        """The ``DaamWidget`` of the opened image, or ``None``."""
        self._words: list[frozenset[str]] | None = None
        self._matching = list(range(len(self.rows)))
        self._thumbnails: OrderedDict[int, bytes] = OrderedDict()
        super().__init__([self.grid])
        self.grid.observe(self._on_filter, "filter")
        self.grid.observe(lambda _: self._show_page(), "page")
        self.grid.observe(self._on_selected, "selected")
        self._show_page()

    @property
    def matching(self) -> list[int]:
        """Index rows whose prompts hold every word of the filter."""
        return list(self._matching)

    def filter(self, words: str) -> list[int]:
        """Show the images whose prompts hold every word of ``words`` (``""``: all); returns their rows."""
        self.grid.filter = words
        return self.matching

    def show(self, row: int) -> DaamWidget:
        """Open index row ``row``'s maps below the grid (as clicking its thumbnail does)."""
        if not 0 <= row < len(self.rows):
            raise IndexError(f"row {row} is not in the run's index (0..{len(self.rows) - 1})")
        self.grid.selected = row
        if self.widget is None:
            raise ValueError(self.grid.error)
        return self.widget

    def maps(self, row: int) -> HeatMaps:
        """The maps of index row ``row``."""
        return HeatMaps.load(self.out_dir / self.rows[row].file)

    def _on_filter(self, change: dict[str, Any]) -> None:
        wanted = set(_WORD.findall(change["new"].lower()))
        if self._words is None:
            self._words = [frozenset(_WORD.findall(r.prompt.lower())) for r in self.rows]
        self._matching = [i for i, words in enumerate(self._words) if wanted <= words]
        if self.grid.page != 0:
            self.grid.page = 0  # shows the page
        else:
            self._show_page()

    def _show_page(self) -> None:
        pages = max(1, -(-len(self._matching) // self.page_size))
        if not 0 <= self.grid.page < pages:
            self.grid.page = min(max(self.grid.page, 0), pages - 1)
            return
        start = self.grid.page * self.page_size
        shown = self._matching[start : start + self.page_size]
        unreadable: list[str] = []
        pngs = [self._thumbnail(i, unreadable) for i in shown]
        items = [
            {"row": i, "prompt": self.rows[i].prompt, "label": self.rows[i].label, "size": len(png)}
            for i, png in zip(shown, pngs, strict=True)
        ]
        with self.grid.hold_sync():
            self.grid.pages, self.grid.matches = pages, len(self._matching)
            self.grid.items, self.grid.thumbnails = items, b"".join(pngs)
            self.grid.error = (
                f"{len(unreadable)} files of this page could not be read: " + "; ".join(unreadable)
                if unreadable
                else ""
            )

    def _thumbnail(self, row: int, unreadable: list[str]) -> bytes:
        """The PNG thumbnail of a row's image (``b""`` when its file holds none, or cannot be read: then
        ``unreadable`` says which and why), read lazily and cached."""
        if row in self._thumbnails:
            self._thumbnails.move_to_end(row)
            return self._thumbnails[row]
        try:
            image = read_image(self.out_dir / self.rows[row].file)
        except (OSError, ValueError) as error:
            unreadable.append(f"{self.rows[row].file} ({error})")
            return b""
        thumbnail = b"" if image is None else png(image, min(self.thumbnail_size, max(image.shape[:2])))
        self._thumbnails[row] = thumbnail
        if len(self._thumbnails) > 20 * self.page_size:
            self._thumbnails.popitem(last=False)
        return thumbnail

    def _on_selected(self, change: dict[str, Any]) -> None:
        row = change["new"]
        if row is None:
            self.widget = None
            self.children = [self.grid]
            return
        try:
            self.widget = DaamWidget.from_heat_maps(self.maps(row))
        except (OSError, ValueError) as error:
            self.grid.error = f"row {row}: {error}"
            return
        self.grid.error = ""
        self.children = [self.grid, self.widget]
