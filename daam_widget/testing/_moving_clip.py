"""A made-up video and its maps with a known answer: a red dog that crosses the frame beside a still blue
hat, the maps of "dog" and "hat" on them. For tests and measurements of what shows and stores videos (the
widget's player, ``save_html``, animations), at any size, without a video model."""

from __future__ import annotations

import numpy as np
import torch

from .._grid_sums import GridSums
from .._video_maps import VideoHeatMaps
from .._words import layout_from_text
from ._tokenizers import clip_tokenizer

PROMPT = "a red dog on a blue hat"


def moving_clip_maps(
    frames: int = 49,
    size: tuple[int, int] = (480, 720),
    grid: tuple[int, int] = (30, 45),
    temporal_factor: int = 4,
) -> VideoHeatMaps:
    """``VideoHeatMaps`` of ``frames`` frames of ``size`` from a causal VAE of ``temporal_factor``: "dog"
    a blob on the dog, which crosses from left to right, "hat" one on the hat, the other words spread thin.
    The defaults are CogVideoX's 49 frames at 480x720 (13 latent frames of 30x45 tokens)."""
    if (frames - 1) % temporal_factor:
        raise ValueError(f"frames must be 1 + a multiple of temporal_factor={temporal_factor}, not {frames}")
    latent = (frames - 1) // temporal_factor + 1
    layout = layout_from_text(PROMPT, clip_tokenizer())
    positions = layout.used_positions
    H, W = size
    gy, gx = (torch.linspace(0, 1, n) for n in grid)
    yy, xx = torch.meshgrid(gy, gx, indexing="ij")
    dog_x = torch.linspace(0.15, 0.85, latent)

    def blob(cy: float, cx: float) -> torch.Tensor:
        return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)

    sums = torch.full((len(positions), latent, *grid), 0.02)
    spans = {s.text: s for s in layout.word_spans}
    for g in range(latent):
        sums[positions.index(spans["dog"].tokens[0]), g] += blob(0.4, float(dog_x[g]))
        sums[positions.index(spans["hat"].tokens[0]), g] += 0.6 * blob(0.75, 0.8)
    video = _frames(frames, temporal_factor, dog_x, H, W)
    return VideoHeatMaps(GridSums({grid: sums}, size), positions, layout, temporal_factor, video)


def _frames(frames: int, temporal_factor: int, dog_x: torch.Tensor, H: int, W: int) -> np.ndarray:
    """The clip: a grey gradient, a red disc at the dog's place in each frame's latent frame, a blue
    square for the hat."""
    y, x = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    background = (np.stack([x, y, 1 - x], -1) * 60 + 100).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    hat = (np.abs(y - 0.75) < 0.08) & (np.abs(x - 0.8) < 0.06)
    for j in range(frames):
        source = 0 if j == 0 else (j - 1) // temporal_factor + 1
        dog = (y - 0.4) ** 2 + ((x - float(dog_x[source])) * W / H) ** 2 < 0.01
        video[j][dog] = (200, 40, 40)
        video[j][hat] = (40, 60, 200)
    return video
