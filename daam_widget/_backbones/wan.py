"""Wan 2.1 and 2.2 text-to-video and image-to-video: a transformer over (frame, row, column) tokens with
real cross-attention (``blocks.N.attn2``) to umT5's 512 positions.

Keys are text tokens only, so ``softmax_over="text"`` and ``"all"`` are the same; the padding positions
(zeroed by the pipeline, still keys) take their share like any key. The negative prompt is a second
transformer call in the same step, after the prompt's. Wan 2.2's A14B models hand the low-noise steps
(``t < boundary_ratio * 1000``) to a second transformer, ``transformer_2``: both are traced, its layers
named ``transformer_2.blocks.N.attn2``, and each step counts once whichever runs it.

Image-to-video adds channels to the latents (the first frame's latents and a frame mask), not tokens: the
grid is the latents' as in text-to-video. Wan 2.1 I2V also puts the first frame's CLIP features before the
text that ``attn2`` gets; its processor splits them off (the text is the last 512 positions) and attends
to them in a second attention call, with a softmax of its own, whose output it adds. That call is the
image's, not the words': the maps are the text call's probabilities alone.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import torch

from .._capture import Projections
from .._probabilities import AttentionInputs, text_probabilities
from .._text_streams import TextStream
from ._base import CrossAttentionBackbone, DenoiserCall, argument


class WanBackbone(CrossAttentionBackbone):
    name = "Wan"
    pipelines: ClassVar[tuple[str, ...]] = ("WanPipeline", "WanImageToVideoPipeline")
    processors: ClassVar[tuple[str, ...]] = ("WanAttnProcessor",)
    layer_pattern = r"(transformer_2\.)?blocks\.\d+\.attn2"
    negative_in_separate_call = True
    video = True

    def denoisers(self) -> list[Any]:
        second = getattr(self.pipe, "transformer_2", None)
        return [d for d in (self.denoiser, second) if d is not None]

    def attention_layers(self) -> dict[str, Any]:
        """``blocks.N.attn2`` of the transformer, then ``transformer_2.blocks.N.attn2`` of the second."""
        layers: dict[str, Any] = {}
        for prefix, model in zip(("", "transformer_2."), self.denoisers(), strict=False):
            model = getattr(model, "_orig_mod", model)
            for name, module in model.named_modules():
                if re.fullmatch(r"blocks\.\d+\.attn2", name):
                    layers[prefix + name] = module
        self.check_processors(layers, self.processors)
        return layers

    def projections(self, attn: Any) -> Projections | None:
        """``WanAttnProcessor`` norms q and k across heads, before the head split; with fused projections
        ``to_kv`` still feeds ``norm_k``. An image-conditioned ``attn2`` (Wan 2.1 I2V) norms the image's
        keys with ``norm_added_k``: ``norm_k`` sees the text keys alone."""
        return Projections(attn.norm_q, attn.norm_k, True, True)

    def recompute(
        self,
        attn: Any,
        arguments: dict[str, Any],
        rows: slice,
        call: DenoiserCall,
        heads: list[int] | None,
        share: bool,
    ) -> torch.Tensor:
        hidden, text = arguments["hidden_states"][rows], arguments["encoder_hidden_states"][rows]
        if attn.add_k_proj is not None:  # [image, text] (Wan 2.1 I2V): the text is the call's, last
            text = text[:, -call.text_length :]
        query = attn.norm_q(attn.to_q(hidden)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        key = attn.norm_k(attn.to_k(text)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        everything = slice(None)
        inputs = AttentionInputs(query, key, None, None)
        return text_probabilities(inputs, everything, everything, everything, heads, False)

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = argument(args, kwargs, 0, "hidden_states")  # (batch, channels, frames, h, w)
        frames, h, w = (int(n) for n in latents.shape[-3:])
        pt, ph, pw = self.denoiser.config.patch_size
        scale = int(self.pipe.vae_scale_factor_spatial)
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=argument(args, kwargs, 1, "timestep"),
            embeddings=argument(args, kwargs, 2, "encoder_hidden_states"),
            grid=(frames // pt, h // ph, w // pw),
            image_size=(h * scale, w * scale),
            temporal_factor=int(self.pipe.vae_scale_factor_temporal) * pt,
        )

    def streams(self) -> list[TextStream]:
        return [TextStream("t5")]
