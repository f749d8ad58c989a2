"""What a video costs the widget and its exports: the bytes of the maps, frames and per-step record the
widget sends, its ``save_html`` file, and the animated overlays (GIF, WebP), on made-up clips of
CogVideoX's shape (49 frames of 480x720, 13 latent frames of 30x45 tokens) and Wan 2.1's (81 frames of
480x832, 21 x 30 x 52), seven words, 50 steps. The maps' and the record's sizes do not depend on the
content; the frames' JPEGs and the animations do: measured on the clean made-up clip and on the same clip
with noise added to every pixel (sigma 12, as grain in a real video; the worst case).

python bench/video_export.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from daam_widget import DaamWidget, testing
from daam_widget._step_maps import StepMaps
from daam_widget._widget_data import encode_steps
from daam_widget.plotting import save_animation

SHAPES = {"cogvideox-49": (49, (480, 720), (30, 45)), "wan-81": (81, (480, 832), (30, 52))}
STEPS = 50


def measure(frames: int, size: tuple[int, int], grid: tuple[int, int], grain: float) -> dict[str, float]:
    maps = testing.moving_clip_maps(frames, size, grid)
    if grain:
        noise = np.random.default_rng(0).normal(0, grain, maps.video.shape)
        maps.video = np.clip(maps.video + noise, 0, 255).astype(np.uint8)
    widget = DaamWidget.from_heat_maps(maps, selected="dog")
    words = len(widget.words)
    record = StepMaps(maps.layout, {grid: torch.rand(STEPS, words, maps.latent_frames, *grid)}, size)
    steps = encode_steps(record)
    with tempfile.TemporaryDirectory() as folder:
        html = widget.save_html(Path(folder) / "w.html").stat().st_size
        for key, value in steps.items():
            setattr(widget, key, value)
        widget.num_steps = STEPS
        html_steps = widget.save_html(Path(folder) / "steps.html").stat().st_size
        gif = save_animation(maps, "dog", Path(folder) / "dog.gif", tau=0.4).stat().st_size
        webp = save_animation(maps, "dog", Path(folder) / "dog.webp", tau=0.4).stat().st_size
    mb = 1e6
    return {
        "maps_MB": round(len(widget.maps) / mb, 3),
        "frames_jpeg_MB": round(len(widget.video) / mb, 3),
        "step_maps_MB": round(len(steps["step_maps"]) / mb, 2),
        "save_html_MB": round(html / mb, 2),
        "save_html_with_steps_MB": round(html_steps / mb, 2),
        "gif_MB": round(gif / mb, 2),
        "webp_MB": round(webp / mb, 2),
    }


def main() -> None:
    results = {}
    for name, (frames, size, grid) in SHAPES.items():
        for grain in (0.0, 12.0):
            label = f"{name}{'-grain' if grain else ''}"
            results[label] = measure(frames, size, grid, grain)
            print(label, json.dumps(results[label]), flush=True)


if __name__ == "__main__":
    main()
