"""Matplotlib overlays of DAAM maps on their image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._heat_maps import HeatMaps, Key

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_overlay(
    maps: HeatMaps,
    key: Key,
    *,
    ax: Axes | None = None,
    tau: float | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    colorbar: bool = False,
) -> Axes:
    """The word's soft map (scaled to max 1) over the image; with ``tau``, the Eq. 7 mask's outline too."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if maps.image is not None:
        ax.imshow(maps.image)
    shown = ax.imshow(maps.soft(key, normalize="max"), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    if tau is not None:
        ax.contour(maps.mask(key, tau), levels=[0.5], colors="white", linewidths=1.5)
    span = maps.span(key)
    ax.set_title(span.text if tau is None else f"{span.text} (τ = {tau:g})")
    ax.set_axis_off()
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="attention (max = 1)")
    return ax


def plot_grid(
    maps: HeatMaps,
    keys: Sequence[Key] | None = None,
    *,
    columns: int = 4,
    tau: float | None = None,
    size: float = 2.5,
    **overlay: Any,
) -> Figure:
    """One overlay per word (all words by default), with the image alone first."""
    import matplotlib.pyplot as plt

    keys = list(range(len(maps.words))) if keys is None else list(keys)
    panels = len(keys) + 1
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    flat = list(axes.ravel())
    image = maps.image if maps.image is not None else np.zeros((*maps.shape, 3), np.uint8)
    flat[0].imshow(image)
    flat[0].set_title("image")
    flat[0].set_axis_off()
    for ax, key in zip(flat[1:panels], keys, strict=True):
        plot_overlay(maps, key, ax=ax, tau=tau, **overlay)
    for ax in flat[panels:]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def overlay_image(maps: HeatMaps, key: Key, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The overlay as an RGB uint8 array ``(H, W, 3)``, for writing a PNG without a figure."""
    import matplotlib

    colours = matplotlib.colormaps[cmap](maps.soft(key, normalize="max"))[..., :3]
    base = maps.image if maps.image is not None else np.zeros((*maps.shape, 3), np.uint8)
    mixed = (1 - alpha) * base.astype(np.float64) / 255 + alpha * colours
    return (mixed * 255).round().astype(np.uint8)
