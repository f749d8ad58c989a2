"""``VideoHeatMaps``: the DAAM maps of one video, each word's map a video ``(frames, H, W)``.

A video model's tokens form a (latent frames, h, w) grid. Eq. 6 sums each latent frame's attention over
layers, heads and steps; each frame's sum is upsampled bicubically in space, as an image's is; and a decoded
frame takes the map of the latent frame it comes from. The causal video VAEs of these models encode the
first frame alone and every following ``t`` frames into one latent frame, so decoded frame ``j`` comes from
latent frame ``0`` if ``j == 0``, else ``(j - 1) // t + 1`` (``latent_frame_of``), and ``L`` latent frames
decode to ``(L - 1) t + 1`` frames.

The sums stay at the latent grid (a few kilobytes a word and frame); a word's map is upsampled when it is
asked for, so a clip of 81 frames at 480p costs its full size only for the words looked at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._grid_sums import GridSums
from ._heat_maps import HeatMaps, Key
from ._words import PromptLayout


def latent_frame_of(frame: int, temporal_factor: int) -> int:
    """The latent frame decoded frame ``frame`` comes from, in a causal video VAE that encodes the first
    frame alone and every ``temporal_factor`` frames after it into one latent frame."""
    return 0 if frame == 0 else (frame - 1) // temporal_factor + 1


def fill_frames(maps: HeatMaps, output: Any, i: int) -> None:
    """Give a video's maps whose trace saw no whole clip decoded (a tiled decode, or one blended from
    overlapping parts outside the VAE's decoder) the frames of video ``i`` of the pipeline's ``output``."""
    if isinstance(maps, VideoHeatMaps) and maps.video is None:
        maps.video = frames_of(output, i, maps.num_frames)


def frames_of(output: Any, i: int, frames: int) -> np.ndarray | None:
    """Video ``i`` of a pipeline's output (``output.frames``: float arrays or tensors in [0, 1], or PIL
    images) as uint8 ``(frames, H, W, 3)``; None where it holds no such ``frames`` (latents, another
    count)."""
    clips = getattr(output, "frames", None)
    if clips is None or len(clips) <= i:
        return None
    clip = clips[i]
    if isinstance(clip, list):
        array = np.stack([np.asarray(picture.convert("RGB")) for picture in clip])
    else:
        array = clip.float().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
        if array.ndim == 4 and array.shape[-1] != 3 and array.shape[1] == 3:  # (frames, 3, H, W)
            array = array.transpose(0, 2, 3, 1)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return array if array.shape[0] == frames and array.shape[-1] == 3 and array.ndim == 4 else None


class VideoHeatMaps(HeatMaps):
    """The Eq. 6 maps of one video: ``maps["dog"]`` is ``(frames, H, W)``, one map per decoded frame.

    ``grids`` holds the sums at the latent token grid, ``(positions, latent frames, h, w)`` per resolution;
    ``video`` the decoded frames ``(frames, H, W, 3)`` uint8 where known. Eq. 7 thresholds a word's whole
    clip at τ times its maximum over the clip (``mask(per_frame=True)``: each frame at its own maximum);
    ``iou`` and ``intersection_over_area`` compare space-time masks, or one frame's with ``frame=``.
    ``frame(j)`` gives frame ``j``'s maps as image ``HeatMaps``.
    """

    def __init__(
        self,
        grids: GridSums,
        positions: Sequence[int],
        layout: PromptLayout,
        temporal_factor: int,
        video: np.ndarray | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        shapes = {tuple(g.shape[:2]) for g in grids.grids.values()}
        if len(shapes) != 1 or next(iter(shapes))[0] != len(positions):
            raise ValueError(
                f"grids must be (positions, latent frames, h, w) with {len(positions)} positions and one "
                f"frame count, not {sorted(shapes)}"
            )
        self.grids = grids
        self.positions = tuple(int(p) for p in positions)
        self.layout = layout
        self.image = None
        self.settings = dict(settings or {})
        self.temporal_factor = int(temporal_factor)
        self.latent_frames = int(next(iter(shapes))[1])
        self.num_frames = (self.latent_frames - 1) * self.temporal_factor + 1
        if video is not None and len(video) != self.num_frames:
            raise ValueError(
                f"the video has {len(video)} frames, but {self.latent_frames} latent frames decode to "
                f"{self.num_frames} (temporal factor {self.temporal_factor})"
            )
        self.video = video
        self.frame_sources = [latent_frame_of(j, self.temporal_factor) for j in range(self.num_frames)]
        """The latent frame each decoded frame takes its map from."""

    @property
    def maps(self) -> torch.Tensor:  # type: ignore[override]
        raise AttributeError(
            "a video's maps are made word by word (maps['dog'] is (frames, H, W)); all of them at once "
            "would hold frames x H x W per token: use maps.frame(j).maps for one frame"
        )

    @property
    def _sums(self) -> GridSums:
        """``grids``, which a video's maps are always made from."""
        assert self.grids is not None
        return self.grids

    @property
    def video_shape(self) -> tuple[int, int, int]:
        """(frames, H, W) of every word's map."""
        return (self.num_frames, *self._sums.image_size)

    @property
    def token_grid(self) -> tuple[int, int]:
        """(h, w) of a latent frame's tokens (the largest, where layers differ)."""
        return max(self._sums.grids, key=lambda g: g[0] * g[1])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of each frame."""
        return self._sums.image_size

    def _rows_map(self, rows: Sequence[int]) -> torch.Tensor:
        """Rows ``rows`` of the sums upsampled in space, clamped, summed, each decoded frame taking its
        latent frame's: ``(frames, H, W)``."""
        return self._latent_rows_map(rows)[self.frame_sources]

    def _latent_rows_map(self, rows: Sequence[int]) -> torch.Tensor:
        return self._sums.maps(rows).sum(0)

    def grid_maps(self, key: Key) -> torch.Tensor:
        """A word's sums at the token grid ``(latent frames, h, w)``, before any upsampling (several
        resolutions resized bicubically to the largest and added): Eq. 6 without its last step, what the
        widget sends."""
        rows = [self.positions.index(p) for p in self.span(key).tokens]
        by_size = sorted(self._sums.grids.values(), key=lambda g: -math.prod(g.shape[-2:]))
        total = by_size[0][rows].sum(0)
        for sums in by_size[1:]:
            word = sums[rows].sum(0)
            total = total + F.interpolate(word[:, None], size=total.shape[-2:], mode="bicubic")[:, 0]
        return total

    def latent_frame_maps(self, key: Key) -> torch.Tensor:
        """A word's map at each latent frame ``(latent frames, H, W)``: each distinct map of the clip once
        (decoded frame ``j`` shows row ``frame_sources[j]``)."""
        return self._latent_rows_map([self.positions.index(p) for p in self.span(key).tokens])

    def frame(self, j: int) -> HeatMaps:
        """Decoded frame ``j``'s maps (from 0; negative counts from the end), as image ``HeatMaps``."""
        if not -self.num_frames <= j < self.num_frames:
            raise IndexError(f"frame {j} is out of range; the video has {self.num_frames} frames")
        j %= self.num_frames
        source = self.frame_sources[j]
        frame = {k: g[:, source] for k, g in self._sums.grids.items()}
        grids = GridSums(frame, self._sums.size, self._sums.output_size)
        settings = {**self.settings, "frame": j, "latent_frame": source}
        image = self.video[j] if self.video is not None else None
        return HeatMaps(
            grids.maps(), self.positions, self.layout, image=image, settings=settings, grids=grids
        )

    def mask(self, key: Key, tau: float = 0.4, per_frame: bool = False) -> np.ndarray:
        """Eq. 7 over the clip: bool ``(frames, H, W)``, the word's map at ``tau`` times its maximum over the
        whole clip, or with ``per_frame`` each frame's at ``tau`` times that frame's maximum (a frame with no
        attention then has an empty mask)."""
        if not per_frame:
            return super().mask(key, tau)
        soft = self.soft(key)
        peaks = soft.reshape(len(soft), -1).max(1)[:, None, None]
        return (soft >= tau * peaks) & (peaks > 0)

    def iou(self, a: Key, b: Key, tau: float = 0.4, frame: int | None = None) -> float:
        """IoU of two words' Eq. 7 masks over space and time, or at one ``frame``."""
        if frame is not None:
            return self.frame(frame).iou(a, b, tau)
        return super().iou(a, b, tau)

    def intersection_over_area(
        self, a: Key, b: Key, tau: float | None = None, frame: int | None = None
    ) -> float:
        """How much of word ``a``'s map lies in word ``b``'s, over space and time or at one ``frame``."""
        if frame is not None:
            return self.frame(frame).intersection_over_area(a, b, tau)
        return super().intersection_over_area(a, b, tau)

    def attention_over_frames(self, key: Key) -> np.ndarray:
        """The share of the word's attention in each decoded frame ``(frames,)``: where in the clip it
        falls (each frame counted with the map of its latent frame)."""
        per_frame = self.latent_frame_maps(key).flatten(1).sum(1)[self.frame_sources].numpy()
        total = per_frame.sum()
        return per_frame / total if total > 0 else per_frame

    def renormalized(self, words: Sequence[Key] | None = None) -> HeatMaps:
        raise ValueError("renormalise a video's maps frame by frame: maps.frame(j).renormalized()")

    def __repr__(self) -> str:
        frames, h, w = self.video_shape
        return f"VideoHeatMaps({self.prompt!r}, {frames} frames of {h}x{w}, words={list(self.words)})"
