"""The sums Eq. 6 is made of, kept at each resolution's own grid: what a file stores instead of maps at
the image's size.

Eq. 6 is linear: upsampling each resolution's sum over layers, heads and steps once and adding them gives
the same maps as upsampling every map. So the sums of an image's resolutions (5,440 values a position for
SD at 512 px, against 262,144 at the image's size) rebuild its maps exactly, and are 48 times smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ._aggregate import upsample_once


@dataclass(frozen=True)
class GridSums:
    """Each resolution's ``(positions, h, w)`` sum, the size they are upsampled to, and the size a
    pipeline then resized and cropped its image to (PixArt's and Sana's resolution binning), if any."""

    grids: dict[tuple[int, int], torch.Tensor]
    size: tuple[int, int]
    output_size: tuple[int, int] | None = None

    @classmethod
    def of(
        cls, selected: Iterable[torch.Tensor], size: tuple[int, int], output_size: tuple[int, int]
    ) -> GridSums:
        """The sums of ``selected`` maps (any resolutions, several per resolution) upsampled to ``size``,
        then resized to ``output_size`` where it differs."""
        grids: dict[tuple[int, int], torch.Tensor] = {}
        for m in selected:
            key = (int(m.shape[-2]), int(m.shape[-1]))
            grids[key] = m.float().cpu() if key not in grids else grids[key] + m.float().cpu()
        return cls(grids, size, None if tuple(output_size) == tuple(size) else output_size)

    @property
    def image_size(self) -> tuple[int, int]:
        """The (H, W) of the maps: the output size where the pipeline resized its image, else ``size``."""
        return self.output_size if self.output_size is not None else self.size

    def maps(self, rows: Sequence[int] | None = None) -> torch.Tensor:
        """Eq. 6: ``(positions, H, W)`` at the image's size (a video's ``(positions, frames, H, W)``);
        ``rows``: those positions only."""
        selected = self.grids.values() if rows is None else [g[list(rows)] for g in self.grids.values()]
        maps = upsample_once(selected, self.size)
        if self.output_size is None:
            return maps
        from diffusers.image_processor import PixArtImageProcessor

        height, width = self.output_size
        flat = maps.reshape(1, -1, *maps.shape[-2:])
        return PixArtImageProcessor.resize_and_crop_tensor(flat, width, height)[0].reshape(
            *maps.shape[:-2], height, width
        )
