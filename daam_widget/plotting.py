"""Matplotlib overlays of DAAM maps on their image, and a video's as an animation."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import write_atomically
from ._heat_maps import HeatMaps, Key
from ._video_maps import VideoHeatMaps

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


ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}


def save_animation(
    maps: VideoHeatMaps,
    key: Key,
    path: str | os.PathLike,
    *,
    fps: float = 8.0,
    alpha: float = 0.5,
    cmap: str = "inferno",
    tau: float | None = None,
    per_frame: bool = False,
) -> pathlib.Path:
    """A word's map over every frame of a video, as an animated GIF or WebP (by ``path``'s suffix; Pillow
    writes both), looping at ``fps``. Colours are scaled to the word's peak over the clip (``per_frame``:
    to each frame's); ``tau`` adds the Eq. 7 mask's outline in white. Written whole or not at all."""
    import matplotlib
    from PIL import Image

    if not isinstance(maps, VideoHeatMaps):
        raise TypeError(f"save_animation needs a video's VideoHeatMaps, not {type(maps).__name__}")
    if maps.video is None:
        raise ValueError("these maps keep no frames to draw on (a trace that did not decode the video)")
    target = pathlib.Path(path)
    kind = ANIMATION_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"an animation is written as {' or '.join(ANIMATION_FORMATS)}, not {target.name!r}")
    if not fps > 0:
        raise ValueError(f"fps must be above 0, not {fps!r}")
    latent = maps.latent_frame_maps(key).numpy()
    peaks = latent.reshape(len(latent), -1).max(1)
    clip_peak = peaks.max()
    colormap = matplotlib.colormaps[cmap]
    pictures = []
    for frame, source in zip(maps.video, maps.frame_sources, strict=True):
        peak = peaks[source] if per_frame else clip_peak
        scaled = latent[source] / peak if peak > 0 else np.zeros_like(latent[source])
        mixed = (1 - alpha) * frame / 255 + alpha * colormap(scaled)[..., :3]
        if tau is not None:
            mixed[_outline(scaled >= tau) if peak > 0 else ()] = 1.0
        pictures.append(Image.fromarray((mixed * 255).round().astype(np.uint8)))
    write_atomically(
        target,
        lambda temporary: pictures[0].save(
            temporary,
            format=kind,
            save_all=True,
            append_images=pictures[1:],
            duration=round(1000 / fps),
            loop=0,
        ),
    )
    return target


def _outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with a 4-neighbour outside it (or on the border)."""
    inner = np.pad(mask, 1, constant_values=False)
    eroded = inner[1:-1, 1:-1] & inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
    return mask & ~eroded
