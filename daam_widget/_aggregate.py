"""DAAM's aggregation, Eq. 6: sums of attention maps over layers, heads and steps, upsampled to the image.

Bicubic interpolation is linear, so the sum of upsampled maps equals the upsampled sum. The sums are
therefore kept at each layer's native (latent) resolution and upsampled once per resolution at the end:
the cost of the trace does not grow with the image size, and no per-head, per-step map at image size is
ever made.

Bicubic upsampling overshoots: it can dip below zero beside a peak (on a peaky map, on about 40% of the
pixels). Clamping each layer's map before summing would change the result by up to 20% (relative L1); the
maps are clamped at zero once, after the sum, which is what "sum, then upsample" gives.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F


def add_rows(total: torch.Tensor, probabilities: torch.Tensor, first_row: int) -> torch.Tensor:
    """``total`` ``(..., rows, queries, keys)`` with ``probabilities`` added to its rows from
    ``first_row``, in place. Probabilities with fewer keys (a sample's own caption, a negative prompt
    encoded to its own length) are zero past their keys; more keys than the total give a new, wider total."""
    extra = probabilities.shape[-1] - total.shape[-1]
    if extra > 0:
        total = F.pad(total, (0, extra))
    rows = probabilities.shape[-3]
    if first_row == 0 and rows == total.shape[-3] and extra == 0:
        return total.add_(probabilities)
    total[..., first_row : first_row + rows, :, : probabilities.shape[-1]].add_(probabilities)
    return total


def zeros_for(probabilities: torch.Tensor, rows: int, keys: int) -> torch.Tensor:
    """A zero total ``(..., rows, queries, keys)`` for probabilities like these, at least as wide."""
    *lead, _, queries, width = probabilities.shape
    return probabilities.new_zeros(*lead, rows, queries, max(keys, width))


Layers = tuple[str, ...]
"""Layers whose probabilities were computed together and are summed in one tensor."""
Grid = tuple[int, ...]
"""A layer's token grid: (h, w), or a video's (frames, h, w)."""


class AttentionSums:
    """Running sums of attention probabilities, per layer, at native resolution.

    ``totals[layers]`` is ``(layers, rows, queries, tokens)`` float32 on the pipeline's device, summed over
    heads and steps, for layers computed together (so that adding them is one operation); ``grids[layer]``
    is a layer's (h, w), or a video's (frames, h, w), and ``select`` gives maps ``(rows, tokens, *grid)``.
    The size is fixed, whatever
    the number of steps. With ``time_resolved``, ``by_step[step][layers]`` also keeps each step's map:
    memory then grows by the size of ``totals`` per step (at 512 px on SD 1.x/2.x, about 8.3 MB per image
    and step: 16 layers, 26,944 latent pixels, 77 tokens, 4 bytes).
    """

    def __init__(self, rows: int, time_resolved: bool = False, keys: int = 0) -> None:
        self.rows = rows
        self.keys = keys
        self.time_resolved = time_resolved
        self.totals: dict[Layers, torch.Tensor] = {}
        self.grids: dict[str, Grid] = {}
        self.by_step: dict[int, dict[Layers, torch.Tensor]] = defaultdict(dict)

    def add(
        self,
        layers: Layers,
        step: int,
        probabilities: torch.Tensor,
        grid: Grid,
        first_row: int = 0,
    ) -> None:
        """Add the probabilities of ``layers`` at one step, ``(layers, rows, queries, tokens)`` float32 with
        queries in row-major ``grid`` order, from kept row ``first_row``."""
        self.grids.update(dict.fromkeys(layers, grid))
        self.totals[layers] = self._added(self.totals.get(layers), probabilities, first_row)
        if self.time_resolved:
            self.by_step[step][layers] = self._added(self.by_step[step].get(layers), probabilities, first_row)

    def _added(self, total: torch.Tensor | None, probabilities: torch.Tensor, first_row: int) -> torch.Tensor:
        if total is None:
            total = zeros_for(probabilities, self.rows, self.keys)
        return add_rows(total, probabilities, first_row)

    def nbytes(self) -> int:
        tensors = [*self.totals.values(), *(t for step in self.by_step.values() for t in step.values())]
        return sum(t.numel() * t.element_size() for t in tensors)

    def select(self, layers: Iterable[str], steps: Iterable[int] | None) -> list[torch.Tensor]:
        """The per-layer maps ``(rows, tokens, *grid)`` of ``layers``, summed over all steps or over
        ``steps`` (needs ``time_resolved``)."""
        layers = [name for name in layers if name in self.grids]
        if steps is None:
            totals = _by_layer(self.totals)
            return [self._maps(name, totals[name]) for name in layers]
        if not self.time_resolved:
            raise ValueError(
                "choosing steps after the run needs trace(pipe, time_resolved=True); "
                "or pass steps= to trace() to record only those steps"
            )
        picked = [_by_layer(self.by_step[s]) for s in steps if s in self.by_step]
        return [
            self._maps(n, torch.stack([p[n] for p in picked]).sum(0))
            for n in layers
            if picked and n in picked[0]
        ]

    def _maps(self, layer: str, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities.transpose(1, 2).reshape(probabilities.shape[0], -1, *self.grids[layer])


def _by_layer(totals: dict[Layers, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each layer's ``(rows, queries, tokens)`` sum from sums of layers computed together (a layer in
    several groups, as when a memory limit split a denoiser call differently, sums its parts)."""
    by_layer: dict[str, torch.Tensor] = {}
    for layers, total in totals.items():
        for name, part in zip(layers, total, strict=True):
            if name not in by_layer:
                by_layer[name] = part
                continue
            width = max(by_layer[name].shape[-1], part.shape[-1])
            by_layer[name] = F.pad(by_layer[name], (0, width - by_layer[name].shape[-1])) + F.pad(
                part, (0, width - part.shape[-1])
            )
    return by_layer


class StepRecord:
    """Each denoising step's attention to the prompt's words, summed over the layers of each resolution.

    The widget's time dimension, kept by default, so it must cost little: only ``positions`` (the word
    tokens of the kept rows, not the 77 or 512 padded keys), at each resolution's native grid, in float16.
    The step being recorded is summed in float32 over every key (one sum per group of layers computed
    together) and stored, its words' keys only, in float16 when the next one starts: every resolution in
    one tensor ``(rows, sum of h*w, positions)``, so that storing a step is a few operations whatever the
    number of resolutions. Bytes per image and step: ``sum(h*w) * positions * 2``; SD 1.x/2.x at 512 px
    (grids 64², 32², 16², 8²) with ten one-token words: 5,440 x 10 x 2 = 108,800.
    """

    def __init__(self, rows: int, positions: Sequence[int], keys: int = 0) -> None:
        self.rows = rows
        self.keys = keys
        self.positions = tuple(int(p) for p in positions)
        self._stored: list[list[tuple[torch.Tensor, dict[Grid, int]]]] = []
        """Per step, what each store of it holds: the tensor and where each grid's queries start in it (a
        step read while it runs, as the widget's live view does, is stored in two parts)."""
        self._index: torch.Tensor | None = None
        self._step = -1
        self._current: dict[Grid, torch.Tensor] = {}

    @property
    def num_steps(self) -> int:
        """Steps up to the last recorded one."""
        self._flush()
        return len(self._stored)

    def add(self, step: int, probabilities: torch.Tensor, grid: Grid, first_row: int = 0) -> None:
        """Add layers' probabilities ``(layers, rows, queries, tokens)`` of ``step`` to its resolution's
        sum."""
        if step != self._step:
            self._flush()
            self._step = step
        summed = probabilities[0] if probabilities.shape[0] == 1 else probabilities.sum(0)
        current = self._current.get(grid)
        if (
            current is None
            and first_row == 0
            and summed.shape[0] == self.rows
            and summed.shape[-1] >= self.keys
        ):
            self._current[grid] = summed  # nothing to add it to yet
            return
        if current is None:
            current = zeros_for(summed, self.rows, self.keys)
        self._current[grid] = add_rows(current, summed, first_row)

    def _flush(self) -> None:
        if not self._current:
            return
        while len(self._stored) <= self._step:
            self._stored.append([])
        width = max(t.shape[-1] for t in self._current.values())
        parts = [
            F.pad(t, (0, width - t.shape[-1])) if t.shape[-1] < width else t for t in self._current.values()
        ]
        joined = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if self._index is None or self._index.device != joined.device:
            self._index = torch.tensor(self.positions, dtype=torch.long, device=joined.device)
        words = joined.index_select(2, self._index)
        stored = torch.empty(words.shape, dtype=torch.float16, device=words.device).copy_(words)
        starts, start = {}, 0
        for grid in self._current:
            starts[grid] = start
            start += math.prod(grid)
        self._stored[self._step].append((stored, starts))
        self._current = {}

    def nbytes(self) -> int:
        self._flush()
        return sum(t.numel() * t.element_size() for parts in self._stored for t, _ in parts)

    def bytes_per_step(self) -> int:
        """Bytes one stored step holds (all kept rows)."""
        self._flush()
        stored = [parts for parts in self._stored if parts]
        return sum(t.numel() * t.element_size() for t, _ in stored[0]) if stored else 0

    def grids(self) -> list[Grid]:
        """The recorded resolutions, largest first."""
        self._flush()
        found = {g for parts in self._stored for _, starts in parts for g in starts}
        return sorted(found, key=lambda g: -math.prod(g))

    def maps(self, row: int, grid: Grid, positions: Sequence[int]) -> torch.Tensor:
        """Row ``row``'s maps of ``positions`` at ``grid`` for every step: ``(steps, positions, *grid)``
        float32; zero for steps that were not recorded."""
        self._flush()
        size = math.prod(grid)
        columns = [self.positions.index(p) for p in positions]
        out = torch.zeros(len(self._stored), len(columns), *grid)
        for t, parts in enumerate(self._stored):
            for stored, starts in parts:
                if grid in starts:
                    start = starts[grid]
                    words = stored[row, start : start + size][:, columns].float().cpu()
                    out[t] += words.T.reshape(len(columns), *grid)
        return out


def upsample_once(maps: Iterable[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Eq. 6 from native-resolution sums: ``(..., h, w)`` maps of any resolutions -> ``(..., H, W)``
    (a video's ``(..., frames, h, w)``: each frame upsampled in space).

    Maps of one resolution are summed first, each resolution is upsampled once (bicubic, as the paper),
    and the result is clamped at zero once (see the module docstring).
    """
    by_resolution: dict[tuple[int, int], torch.Tensor] = {}
    for m in maps:
        key = (m.shape[-2], m.shape[-1])
        by_resolution[key] = m if key not in by_resolution else by_resolution[key] + m
    if not by_resolution:
        raise ValueError("no attention maps were recorded for this selection")
    total: torch.Tensor | None = None
    for m in by_resolution.values():
        flat = m.reshape(-1, 1, *m.shape[-2:])
        up = F.interpolate(flat, size=size, mode="bicubic", align_corners=False)
        up = up.reshape(*m.shape[:-2], *size)
        total = up if total is None else total.add_(up)
    assert total is not None
    return total.clamp_(min=0)


def latent_grid(num_queries: int, latent_size: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) of a layer with ``num_queries`` image queries in a UNet whose input is ``latent_size``.

    Each UNet downsampling halves the size, rounding up (a stride-2 convolution with padding 1), so odd
    and non-square latents work too.
    """
    h, w = latent_size
    while h * w > num_queries:
        h, w = (h + 1) // 2, (w + 1) // 2
    if h * w != num_queries:
        raise ValueError(
            f"a cross-attention layer has {num_queries} queries, which is no downsampling of the "
            f"{latent_size[0]}x{latent_size[1]} latent"
        )
    return h, w
