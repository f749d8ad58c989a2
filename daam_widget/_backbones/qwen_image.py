"""Qwen-Image: a double-stream MMDiT whose every block runs joint attention over [text, image].

The prompt goes into a Qwen2.5-VL chat template (a system message, then the prompt as the user's turn);
the pipeline drops the template's first 34 positions, keeps each prompt's valid tokens and pads them with
zeros to the longest prompt, so a key holds the prompt's tokens and the template's closing tokens, then
nothing (masked out by a bool key mask, ``None`` when no prompt is padded). The negative prompt of true
CFG is a second transformer call after the positive one in each step. Latents are packed 2x2; the VAE is
a video VAE that decodes ``(batch, 3, 1, H, W)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream, valid_from
from ._base import DenoiserCall, JointBackbone


class QwenImageBackbone(JointBackbone):
    name = "Qwen-Image"
    pipelines: ClassVar[tuple[str, ...]] = ("QwenImagePipeline",)
    layer_pattern: ClassVar[str] = r"transformer_blocks\.\d+\.attn"
    negative_in_separate_call = True
    processors: ClassVar[tuple[str, ...]] = ("QwenDoubleStreamAttnProcessor2_0",)
    concept_blocks_pattern = r"transformer_blocks\.\d+"
    concept_placeholders = 1  # its rotary embedding fails on no image token

    def concept_entry(self, embeddings: torch.Tensor) -> torch.Tensor:
        model = self.model
        return model.txt_in(model.txt_norm(embeddings.to(model.txt_in.weight.dtype)))

    def concept_call(self, kwargs: dict[str, Any], concepts: int) -> dict[str, Any]:
        """Qwen-Image's rotary embedding is ``(image frequencies, text frequencies)``: the placeholder's, and
        the first ``concepts`` text positions."""
        image, text = kwargs["image_rotary_emb"]
        kwargs = super().concept_call({**kwargs, "image_rotary_emb": None}, concepts)
        kwargs["image_rotary_emb"] = (image[: self.concept_placeholders], text[:concepts])
        return kwargs

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = kwargs["hidden_states"]
        shapes = kwargs.get("img_shapes")
        if not shapes:
            raise ValueError("the Qwen-Image transformer was called without img_shapes; the grid is unknown")
        first = shapes[0]
        if isinstance(first[0], (tuple, list)):  # a list of shapes per image, or one shape per sample
            first = first[0]
        _, h, w = first
        scale = 2 * int(self.pipe.vae_scale_factor)  # 2x2 packing
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs.get("timestep"),
            embeddings=kwargs["encoder_hidden_states"],
            grid=(int(h), int(w)),
            image_size=(int(h) * scale, int(w) * scale),
        )

    def streams(self) -> list[TextStream]:
        prefix, _, suffix = self.pipe.prompt_template_encode.partition("{}")
        keys = valid_from(int(self.pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=Template(prefix, suffix), keys=keys)]
