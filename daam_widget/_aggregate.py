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

from collections import defaultdict
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F


def add_rows(total: torch.Tensor, probabilities: torch.Tensor, first_row: int) -> torch.Tensor:
    """``total`` ``(rows, queries, keys)`` with ``probabilities`` added to its rows from ``first_row``, in
    place. Probabilities with fewer keys (a sample's own caption, a negative prompt encoded to its own
    length) are zero past their keys; more keys than the total give a new, wider total."""
    extra = probabilities.shape[-1] - total.shape[-1]
    if extra > 0:
        total = F.pad(total, (0, extra))
    rows = probabilities.shape[0]
    if first_row == 0 and rows == total.shape[0] and extra == 0:
        return total.add_(probabilities)
    total[first_row : first_row + rows, :, : probabilities.shape[-1]].add_(probabilities)
    return total


def zeros_for(probabilities: torch.Tensor, rows: int, keys: int) -> torch.Tensor:
    """A zero total ``(rows, queries, keys)`` for probabilities like these, at least as wide as they."""
    return probabilities.new_zeros(rows, probabilities.shape[1], max(keys, probabilities.shape[-1]))


class AttentionSums:
    """Running sums of attention probabilities, per layer, at native resolution.

    ``totals[layer]`` is ``(rows, queries, tokens)`` float32 on the pipeline's device, summed over heads and
    steps, in the layout the probabilities come in (so that adding them moves no memory); ``grids[layer]``
    is the layer's (h, w), and ``select`` gives maps ``(rows, tokens, h, w)``. The size is fixed, whatever
    the number of steps. With ``time_resolved``, ``by_step[step][layer]`` also keeps each step's map:
    memory then grows by the size of ``totals`` per step (at 512 px on SD 1.x/2.x, about 8.3 MB per image
    and step: 16 layers, 26,944 latent pixels, 77 tokens, 4 bytes).
    """

    def __init__(self, rows: int, time_resolved: bool = False, keys: int = 0) -> None:
        self.rows = rows
        self.keys = keys
        self.time_resolved = time_resolved
        self.totals: dict[str, torch.Tensor] = {}
        self.grids: dict[str, tuple[int, int]] = {}
        self.by_step: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)

    def add(
        self, layer: str, step: int, probabilities: torch.Tensor, grid: tuple[int, int], first_row: int = 0
    ) -> None:
        """Add one layer's probabilities of one step, ``(rows, queries, tokens)`` float32 with queries in
        row-major ``grid`` order, from kept row ``first_row``."""
        if layer not in self.totals:
            self.totals[layer] = zeros_for(probabilities, self.rows, self.keys)
            self.grids[layer] = grid
        self.totals[layer] = add_rows(self.totals[layer], probabilities, first_row)
        if self.time_resolved:
            if layer not in self.by_step[step]:
                self.by_step[step][layer] = zeros_for(probabilities, self.rows, self.keys)
            self.by_step[step][layer] = add_rows(self.by_step[step][layer], probabilities, first_row)

    def nbytes(self) -> int:
        tensors = [*self.totals.values(), *(t for step in self.by_step.values() for t in step.values())]
        return sum(t.numel() * t.element_size() for t in tensors)

    def select(self, layers: Iterable[str], steps: Iterable[int] | None) -> list[torch.Tensor]:
        """The per-layer maps ``(rows, tokens, h, w)`` of ``layers``, summed over all steps or over
        ``steps`` (needs ``time_resolved``)."""
        layers = [name for name in layers if name in self.totals]
        if steps is None:
            return [self._maps(name, self.totals[name]) for name in layers]
        if not self.time_resolved:
            raise ValueError(
                "choosing steps after the run needs trace(pipe, time_resolved=True); "
                "or pass steps= to trace() to record only those steps"
            )
        picked = [self.by_step[s] for s in steps if s in self.by_step]
        return [
            self._maps(n, torch.stack([p[n] for p in picked]).sum(0))
            for n in layers
            if picked and n in picked[0]
        ]

    def _maps(self, layer: str, probabilities: torch.Tensor) -> torch.Tensor:
        h, w = self.grids[layer]
        return probabilities.transpose(1, 2).reshape(probabilities.shape[0], -1, h, w)


class StepRecord:
    """Each denoising step's attention to the prompt's words, summed over the layers of each resolution.

    The widget's time dimension, kept by default, so it must cost little: only ``positions`` (the word
    tokens of the kept rows, not the 77 or 512 padded keys), at each resolution's native grid, in float16.
    ``steps[t][grid]`` is ``(rows, h*w, positions)``. The step being recorded is summed in float32 over
    every key (one ``add_`` per layer call) and stored, its words' keys only, in float16 when the next one
    starts. Bytes per image and step: ``sum(h*w) * positions * 2``;
    SD 1.x/2.x at 512 px (grids 64², 32², 16², 8²) with ten one-token words: 5,440 x 10 x 2 = 108,800.
    """

    def __init__(self, rows: int, positions: Sequence[int], keys: int = 0) -> None:
        self.rows = rows
        self.keys = keys
        self.positions = tuple(int(p) for p in positions)
        self.steps: list[dict[tuple[int, int], torch.Tensor]] = []
        self._index: torch.Tensor | None = None
        self._step = -1
        self._current: dict[tuple[int, int], torch.Tensor] = {}

    def add(self, step: int, probabilities: torch.Tensor, grid: tuple[int, int], first_row: int = 0) -> None:
        """Add one layer's probabilities ``(rows, queries, tokens)`` of ``step`` to its resolution's sum."""
        if step != self._step:
            self._flush()
            self._step = step
        current = self._current.get(grid)
        if current is None:
            current = zeros_for(probabilities, self.rows, self.keys)
        self._current[grid] = add_rows(current, probabilities, first_row)

    def _flush(self) -> None:
        if not self._current:
            return
        while len(self.steps) <= self._step:
            self.steps.append({})
        stored = self.steps[self._step]
        for g, t in self._current.items():
            if self._index is None or self._index.device != t.device:
                self._index = torch.tensor(self.positions, dtype=torch.long, device=t.device)
            words = t.index_select(2, self._index)
            # a step's second call (Flux's negative prompt) adds to what its first stored
            stored[g] = (stored[g].float() + words).half() if g in stored else words.half()
        self._current = {}

    def nbytes(self) -> int:
        self._flush()
        held = [t for s in self.steps for t in s.values()]
        return sum(t.numel() * t.element_size() for t in held)

    def bytes_per_step(self) -> int:
        """Bytes one stored step holds (all kept rows)."""
        stored = [s for s in self.steps if s]
        return sum(t.numel() * t.element_size() for t in stored[0].values()) if stored else 0

    def grids(self) -> list[tuple[int, int]]:
        """The recorded resolutions, largest first."""
        self._flush()
        found = {g for s in self.steps for g in s}
        return sorted(found, key=lambda g: -g[0] * g[1])

    def maps(self, row: int, grid: tuple[int, int], positions: Sequence[int]) -> torch.Tensor:
        """Row ``row``'s maps of ``positions`` at ``grid`` for every step: ``(steps, positions, h, w)``
        float32; zero for steps that were not recorded."""
        self._flush()
        h, w = grid
        columns = [self.positions.index(p) for p in positions]
        out = torch.zeros(len(self.steps), len(columns), h, w)
        for t, step in enumerate(self.steps):
            if grid in step:
                out[t] = step[grid][row][:, columns].float().cpu().T.reshape(len(columns), h, w)
        return out


def upsample_once(maps: Iterable[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Eq. 6 from native-resolution sums: ``(..., h, w)`` maps of any resolutions -> ``(..., H, W)``.

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
