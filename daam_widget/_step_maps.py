"""``StepMaps``: one image's word maps through the denoising steps, at each resolution's native grid."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ._aggregate import upsample_once
from ._words import PromptLayout, Span


class StepMaps:
    """When and where each word of the prompt gets its attention.

    ``maps[grid]`` is ``(steps, words, h, w)`` float32: word ``k``'s attention at step ``t`` from the
    layers of that resolution (summed over layers and heads, and over the word's tokens), at the grid's
    own size; a video's is ``(steps, words, latent frames, h, w)``, still keyed by ``(h, w)``. Summing over
    steps and upsampling each resolution gives Eq. 6 (``total``).
    """

    def __init__(
        self, layout: PromptLayout, maps: dict[tuple[int, int], torch.Tensor], image_size: tuple[int, int]
    ) -> None:
        self.layout = layout
        self.maps = maps
        self.image_size = image_size

    @property
    def words(self) -> tuple[str, ...]:
        return self.layout.words

    @property
    def spans(self) -> tuple[Span, ...]:
        return self.layout.spans

    @property
    def grids(self) -> list[tuple[int, int]]:
        """The resolutions, largest first."""
        return sorted(self.maps, key=lambda g: -g[0] * g[1])

    @property
    def latent_frames(self) -> int | None:
        """A video's latent frames; None for an image."""
        first = next(iter(self.maps.values()), None)
        return int(first.shape[2]) if first is not None and first.dim() == 5 else None

    @property
    def num_steps(self) -> int:
        return next(iter(self.maps.values())).shape[0] if self.maps else 0

    def mass(self) -> np.ndarray:
        """``(steps, resolutions, words)``: the attention each word receives, summed over the grid's
        queries, per step and resolution (``grids`` order). Its sum over steps is the word's total."""
        return torch.stack([self.maps[g].flatten(2).sum(2) for g in self.grids], dim=1).numpy()

    def on_grid(
        self, grid: tuple[int, int] | None = None, grids: Iterable[tuple[int, int]] | None = None
    ) -> torch.Tensor:
        """``(steps, words, h, w)`` at ``grid`` (default: the largest chosen; a video's ``(steps, words,
        latent frames, h, w)``): each resolution in ``grids`` (default: all) resized bicubically in space to
        it and summed, clamped at zero: Eq. 6 per step, at a small size (the widget's time view)."""
        chosen = list(grids) if grids is not None else self.grids
        target = grid or max(chosen, key=lambda g: g[0] * g[1])
        out: torch.Tensor | None = None
        for g in chosen:
            m = self.maps[g]
            if g != target:
                flat = F.interpolate(
                    m.flatten(0, -3)[:, None], size=target, mode="bicubic", align_corners=False
                )
                m = flat.reshape(*m.shape[:-2], *target)
            out = m.clone() if out is None else out.add_(m)
        if out is None:
            return torch.zeros(self.num_steps, len(self.words), *target)
        return out.clamp_(min=0)

    def total(self, steps: Iterable[int] | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Eq. 6 over ``steps`` (default: all): ``(words, H, W)`` at the image size, or at ``size`` (a
        video's ``(words, latent frames, H, W)``)."""
        picked = list(steps) if steps is not None else list(range(self.num_steps))
        return upsample_once([self.maps[g][picked].sum(0) for g in self.grids], size or self.image_size)

    def save(self, path: str | os.PathLike) -> None:
        """Write the per-step maps, prompt and word alignment to a safetensors file (no pickle)."""
        from ._files import save_step_maps

        save_step_maps(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> StepMaps:
        """Read a file written by ``save`` (``daam-widget run --per-step`` writes them)."""
        from ._files import load_step_maps

        return load_step_maps(path)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{h}x{w}" for h, w in self.grids)
        frames = f", {self.latent_frames} latent frames" if self.latent_frames is not None else ""
        return f"StepMaps({len(self.words)} words, {self.num_steps} steps, grids {sizes}{frames})"
