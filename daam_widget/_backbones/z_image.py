"""Z-Image and Z-Image-Turbo: a single-stream DiT whose main layers attend over one sequence per sample,
[image tokens padded to a multiple of 32, caption tokens padded to a multiple of 32], padded across the
batch and masked there.

The caption is the valid Qwen3 tokens of the prompt in Qwen3's chat template (second-to-last hidden
layer); the pads that the transformer appends to it, and to the image, are learned tokens, not masked, so
each sample's text keys are its caption's own positions in its sequence. The noise and caption refiners
attend within the image or the caption alone and are not traced. The transformer takes lists (one tensor
per sample) and a timestep that grows from 0 to 1; guidance batches are ``[positive, negative]``, and
``cfg_truncation`` can turn guidance off for the last steps.
"""

from __future__ import annotations

from typing import Any

from torch.nn.utils.rnn import pad_sequence

from .._text_streams import Template, TextStream, valid_from
from ._base import DenoiserCall, JointBackbone, Layout, argument, pipeline_call_locals

_MULTIPLE = 32  # what the transformer pads the image and caption tokens to


class ZImageBackbone(JointBackbone):
    name = "Z-Image"
    pipelines = ("ZImagePipeline",)
    layer_pattern = r"layers\.\d+\.attention"
    processors = ("ZSingleStreamAttnProcessor",)
    negative_first = False

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = argument(args, kwargs, 0, "x")
        captions = argument(args, kwargs, 2, "cap_feats")
        patch = int(kwargs.get("patch_size", 2))
        h, w = (int(side) for side in latents[0].shape[-2:])
        scale = int(self.pipe.vae_scale_factor)
        return DenoiserCall(
            batch=len(latents),
            timestep=argument(args, kwargs, 1, "t"),
            embeddings=self.once_per("text", captions, lambda parts: pad_sequence(parts, batch_first=True)),
            grid=(h // patch, w // patch),
            image_size=(h * scale, w * scale),
            text_lengths=tuple(len(c) for c in captions),
            rising=True,
        )

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        image = call.grid[0] * call.grid[1]
        start = image + (-image) % _MULTIPLE
        assert call.text_lengths is not None
        return [(slice(0, image), slice(start, start + length)) for length in call.text_lengths]

    def guided(self) -> bool | None:
        call_locals = pipeline_call_locals(self.pipe)
        if "apply_cfg" in call_locals:  # this step's choice (cfg_truncation ends guidance early)
            return bool(call_locals["apply_cfg"])
        return super().guided()

    def streams(self) -> list[TextStream]:
        template = Template.user_turn(self.pipe.tokenizer, enable_thinking=True)
        return [TextStream("qwen", template=template, keys=valid_from(0))]
