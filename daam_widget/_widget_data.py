"""What the widget sends to the browser: maps, steps, images and history as compact binary buffers.

Maps travel as ``bytes`` traits (binary comm buffers, a ``DataView`` in the browser), never as JSON lists:

- ``maps``: uint8 ``(words, h, w)`` row-major, each word scaled so its maximum is 255; ``h, w`` is the image
  size capped at ``max_size`` on the longer side (area-averaged); the raw maxima go in ``peaks``.
- ``step_maps``: uint8 ``(steps, words, gh, gw)`` at the largest attention grid (every resolution resized
  bicubically to it and summed: Eq. 6 of one step), each (step, word) scaled to 255 with its raw maximum in
  ``step_scales`` (float32 ``(steps, words)``), so that the browser sums any range of steps itself.
- ``step_mass``: float32 ``(steps, resolutions, words)``: the attention each word receives per step and
  resolution, for the per-word chart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._heat_maps import HeatMaps
from ._step_maps import StepMaps


def encode_maps(maps: HeatMaps, max_size: int) -> tuple[tuple[int, int], bytes, list[float]]:
    """Every word's map as uint8 ``(words, h, w)`` scaled to max 255, ``(h, w)``, and the raw maxima."""
    H, W = maps.shape
    word_spans = [s for s in maps.spans if s.is_word]
    stack = torch.zeros((len(word_spans), H, W))
    for k, span in enumerate(word_spans):
        if span.available:
            stack[k] = torch.from_numpy(maps.soft(k))
    return encode_stack(stack, max_size)


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
    data, scales = _quantize(on_grid.flatten(0, 1))
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
