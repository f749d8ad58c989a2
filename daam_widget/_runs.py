"""Run tracking: which denoiser calls make one generation, which are its steps, which rows to record.

A generation runs from new text-encoder outputs (or new embeddings whose timestep does not decrease) to
the decoded images. Each call of the denoiser is one of: a denoising step (the conditional prediction,
with the unconditional one in the same batch when guidance is on); the unconditional prediction of the
current step as a call of its own (Flux's true CFG); or an extra call that is not a step (SD3's
skip-layer guidance), which is not recorded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ._aggregate import AttentionSums, StepRecord
from ._backbones import DenoiserCall
from ._encodings import EncoderCall
from ._text_streams import TextStream

Role = Literal["step", "negative", "extra"]


@dataclass
class Generation:
    """One pipeline call: the denoiser calls from one encoding of the prompts to the decoded images.

    ``guided`` is the batch layout at the first step. ``negative_rows``: the kept rows are [negative,
    positive] (the negative prompt is kept and there is one), else [positive]. ``guided_now`` may turn
    off during the run (diffusers' CFG-cutoff callbacks drop the unconditional half after some step).
    """

    first_image: int
    num_images: int
    guided: bool
    negative_rows: bool
    call: DenoiserCall
    encodings: list[EncoderCall]
    streams: list[TextStream]
    sums: AttentionSums
    settings: dict[str, Any]
    negative_embeddings: torch.Tensor | None = None
    guided_now: bool = False
    negative_first: bool = True
    role: Role = "step"
    last_call: DenoiserCall | None = None
    """The last call that was a step."""
    running_call: DenoiserCall | None = None
    """The call running now: a step, or the negative prompt's call of a step."""
    steps: int = 0
    images: list[np.ndarray] = field(default_factory=list)
    video_parts: list[np.ndarray] = field(default_factory=list)
    """A video's decoded frames ``(images, frames, H, W, 3)`` uint8, a part per decoder call (a causal video
    VAE decodes a few frames at a time), in order."""
    record: StepRecord | None = None
    concept_sums: AttentionSums | None = None
    """The concept maps' sums (``trace(concepts=...)``), by joint block, as ``sums`` keeps DAAM's."""

    def video(self, local: int) -> np.ndarray | None:
        """Image ``local``'s decoded frames ``(frames, H, W, 3)``, if the VAE decoded them under the trace.

        None, with a warning, where its parts are not the clip: a VAE that decodes a long clip in
        overlapping parts and blends them outside its decoder (HunyuanVideo's, with its default
        ``use_framewise_decoding``) gives the decoder more frames than the clip has."""
        if not self.video_parts:
            return None
        frames = np.concatenate([part[local] for part in self.video_parts])
        clip = (self.call.grid[0] - 1) * self.call.temporal_factor + 1
        if len(frames) != clip:
            warnings.warn(
                f"the VAE decoded the video in overlapping parts ({len(frames)} frames for a clip of "
                f"{clip}), blended outside its decoder: the maps come without the frames",
                stacklevel=2,
            )
            return None
        return frames

    @property
    def embeddings(self) -> torch.Tensor:
        return self.call.embeddings

    @property
    def has_negative(self) -> bool:
        return self.guided or self.negative_embeddings is not None

    @property
    def negative_row_offset(self) -> int:
        """Kept rows are [negative, positive] when the negative prompt is kept, else [positive]."""
        return self.num_images if self.negative_rows else 0

    def batch_size(self, guided: bool) -> int:
        return 2 * self.num_images if guided else self.num_images

    def same_text(self, call: DenoiserCall) -> bool:
        """Whether a call has the text of this run's last step (the same tensor)."""
        return self.last_call is not None and call.embeddings is self.last_call.embeddings

    def continues_with(self, call: DenoiserCall, guided: bool) -> bool:
        """Whether a call with new embeddings is a later step of this run rather than a new run."""
        return (
            call.batch == self.batch_size(guided)
            and self.last_call is not None
            and call.time < self.last_call.time
        )

    def is_separate_negative(self, call: DenoiserCall) -> bool:
        """A second call at the same timestep with other text: the unconditional prediction (true CFG)."""
        return (
            self.last_call is not None
            and call.embeddings is not self.embeddings
            and call.batch == self.num_images
            and call.time == self.last_call.time
        )

    def rows_to_record(self) -> list[tuple[slice, int]]:
        """The rows of the current call's batch to record, each with the kept row it goes to; empty:
        skip the call. Kept rows are [negative, positive] when the negative prompt is kept."""
        n = self.num_images
        if self.role == "extra":
            return []
        if self.role == "negative":
            return [(slice(0, n), 0)] if self.negative_rows else []
        if not self.guided_now:
            return [(slice(0, n), self.negative_row_offset)]
        negative, positive = self._halves()
        if not self.negative_rows:
            return [(positive, 0)]
        if self.negative_first:
            return [(slice(0, 2 * n), 0)]
        return [(negative, 0), (positive, n)]

    def halves(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The negative and positive rows of a guidance batch's ``text``."""
        negative, positive = self._halves()
        return text[negative], text[positive]

    def _halves(self) -> tuple[slice, slice]:
        """The negative and positive rows of a guidance batch, in the family's order."""
        first, second = slice(0, self.num_images), slice(self.num_images, 2 * self.num_images)
        return (first, second) if self.negative_first else (second, first)
