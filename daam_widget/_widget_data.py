"""What the widget sends to the browser: maps, steps, images and history as compact binary buffers.

Maps travel as ``bytes`` traits (binary comm buffers, a ``DataView`` in the browser), never as JSON lists:

- ``maps``: uint8 ``(words, h, w)`` row-major, each word scaled so its maximum is 255; ``h, w`` is the image
  size capped at ``max_size`` on the longer side (area-averaged); the raw maxima go in ``peaks``.
- ``step_maps``: uint8 ``(steps, words, gh, gw)`` at the largest attention grid (every resolution resized
  bicubically to it and summed: Eq. 6 of one step), each (step, word) scaled to 255 with its raw maximum in
  ``step_scales`` (float32 ``(steps, words)``), so that the browser sums any range of steps itself.
- ``step_mass``: float32 ``(steps, resolutions, words)``: the attention each word receives per step and
  resolution, for the per-word chart.

A video's maps travel at its token grid, as a step record does, and the browser upsamples the frame it
shows: ``maps`` is uint8 ``(latent frames, words, gh, gw)`` with ``peaks`` float ``(latent frames,
words)``, each (frame, word) scaled to 255, at ``map_grid``; ``step_maps`` is ``(latent frames, steps,
words, gh, gw)`` and ``step_scales`` ``(latent frames, steps, words)``, each latent frame's record laid out
as an image's. A decoded frame shows its latent frame's maps (``frame_sources``). The frames travel as
JPEGs one after another (``video``; each frame's ``[offset, length]`` in ``video_frames``), and
``frame_mass`` (float32 ``(words, frames)``) is each word's share of its attention in each frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._heat_maps import HeatMaps
from ._images import jpeg
from ._step_maps import StepMaps
from ._video_maps import VideoHeatMaps


def encode_maps(maps: HeatMaps, max_size: int) -> tuple[tuple[int, int], bytes, list[float]]:
    """Every word's map as uint8 ``(words, h, w)`` scaled to max 255, ``(h, w)``, and the raw maxima."""
    H, W = maps.shape
    word_spans = [s for s in maps.spans if s.is_word]
    stack = torch.zeros((len(word_spans), H, W))
    for k, span in enumerate(word_spans):
        if span.available:
            stack[k] = torch.from_numpy(maps.soft(k))
    return encode_stack(stack, max_size)


def encode_video(maps: VideoHeatMaps, max_size: int) -> dict[str, Any]:
    """The traits of a clip's maps and frames: ``maps``, ``peaks``, ``map_grid``, ``map_size`` (the size
    the browser upsamples them to), ``video``, ``video_frames``, ``frame_sources``, ``latent_frames``,
    ``frame_mass``."""
    word_spans = [s for s in maps.spans if s.is_word]
    stack = torch.zeros((len(word_spans), maps.latent_frames, *maps.token_grid))
    mass = np.zeros((len(word_spans), maps.num_frames), dtype="<f4")
    for k, span in enumerate(word_spans):
        if span.available:
            stack[k] = maps.grid_maps(k)
            mass[k] = maps.attention_over_frames(k)
    frames = [jpeg(frame) for frame in maps.video] if maps.video is not None else []
    offsets = np.cumsum([0, *map(len, frames)])
    return {
        **encode_video_stack(stack, sent_size(maps.shape, max_size)),
        "video": b"".join(frames),
        "video_frames": [(int(offsets[j]), len(f)) for j, f in enumerate(frames)],
        "frame_sources": list(maps.frame_sources),
        "frame_mass": mass.tobytes(),
    }


def encode_video_stack(stack: torch.Tensor, size: tuple[int, int]) -> dict[str, Any]:
    """``(words, latent frames, gh, gw)`` sums at the token grid as the ``maps``, ``peaks``, ``map_grid``,
    ``map_size`` and ``latent_frames`` traits (``size``: what the browser upsamples them to)."""
    by_frame = stack.clamp(min=0).transpose(0, 1)
    data, peaks = _quantize(by_frame.reshape(-1, *by_frame.shape[-2:]))
    return {
        "maps": data.tobytes(),
        "peaks": [float(p) for p in peaks],
        "map_grid": tuple(stack.shape[-2:]),
        "map_size": size,
        "latent_frames": int(stack.shape[1]),
    }


NO_VIDEO: dict[str, Any] = {
    "map_grid": (0, 0),
    "video": b"",
    "video_frames": [],
    "frame_sources": [],
    "latent_frames": 0,
    "frame_mass": b"",
}
"""The video traits of an image."""


def sent_size(image_size: tuple[int, int], max_size: int) -> tuple[int, int]:
    """``(h, w)`` of the maps sent for an image of ``image_size``: at most ``max_size`` on the longer side."""
    H, W = image_size
    scale = min(1.0, max_size / max(H, W))
    return max(1, round(H * scale)), max(1, round(W * scale))


def encode_stack(stack: torch.Tensor, max_size: int) -> tuple[tuple[int, int], bytes, list[float]]:
    """``(words, H, W)`` maps as uint8 scaled to max 255 at most ``max_size`` on the longer side
    (area-averaged), their ``(h, w)``, and their raw maxima."""
    H, W = stack.shape[-2:]
    h, w = sent_size((H, W), max_size)
    peaks = stack.flatten(1).amax(1) if len(stack) else torch.zeros(0)
    if (h, w) != (H, W):
        stack = F.interpolate(stack[None], size=(h, w), mode="area")[0]
    data, _ = _quantize(stack)
    return (h, w), data.tobytes(), [float(p) for p in peaks]


NO_STEPS: dict[str, Any] = {"step_maps": b"", "step_scales": b"", "step_grid": (0, 0), "step_mass": b""}


def encode_steps(steps: StepMaps, grids: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The traits of the time view: ``step_maps``, ``step_scales``, ``step_grid``, ``step_mass``."""
    if steps.num_steps == 0 or not steps.words:
        return dict(NO_STEPS)
    on_grid = steps.on_grid(grids=grids)
    if on_grid.dim() == 5:  # a video's: each latent frame's record in turn
        on_grid = on_grid.permute(2, 0, 1, 3, 4)
    data, scales = _quantize(on_grid.reshape(-1, *on_grid.shape[-2:]))
    return {
        "step_maps": data.tobytes(),
        "step_scales": scales.numpy().astype("<f4").tobytes(),
        "step_grid": tuple(on_grid.shape[-2:]),
        "step_mass": steps.mass().astype("<f4").tobytes(),
    }


def _quantize(stack: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """``(n, h, w)`` -> uint8 scaled per map to 255, and each map's maximum."""
    top = stack.flatten(1).amax(1) if len(stack) else torch.zeros(0)
    scaled = stack / top.clamp_min(1e-30)[:, None, None] * 255
    return scaled.round().clamp(0, 255).to(torch.uint8).numpy(), top


def spans_state(maps: HeatMaps | StepMaps) -> list[dict[str, Any]]:
    """Words and punctuation in text order: ``{text, start, end, word (index or None), available}``, with
    ``start`` and ``end`` in UTF-16 code units, as the browser's strings count them (Python counts code
    points: an emoji is one of those and two of these)."""
    word_spans = [s for s in maps.spans if s.is_word]
    index = {id(s): k for k, s in enumerate(word_spans)}
    units = _utf16_offsets(maps.layout.text)
    return [
        {
            "text": s.text,
            "start": units[s.start],
            "end": units[s.end],
            "word": index.get(id(s)),
            "available": bool(s.available),
        }
        for s in maps.spans
    ]


def _utf16_offsets(text: str) -> list[int]:
    """For every code-point offset into ``text`` (0 to ``len(text)``), the UTF-16 offset."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets
