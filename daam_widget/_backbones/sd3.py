"""Stable Diffusion 3 / 3.5: joint attention over [image, text] tokens; text keys are CLIP then T5.

Each ``JointTransformerBlock.attn`` sees the image tokens as ``hidden_states`` and the text as
``encoder_hidden_states``. SD3.5's second, image-only ``attn2`` has no text keys and is not traced. The
text sequence is 77 CLIP positions (CLIP-L and CLIP-G features side by side) followed by the T5 window;
with ``text_encoder_3=None`` the T5 part is zeros and has no words.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._capture import Projections
from .._probabilities import joint_probabilities
from .._text_streams import TextStream
from ._base import Backbone, DenoiserCall, Layout, argument


class SD3Backbone(Backbone):
    name = "Stable Diffusion 3"
    pipelines = ("StableDiffusion3Pipeline",)
    processors = ("JointAttnProcessor2_0",)
    joint = True
    concept_blocks_pattern = r"transformer_blocks\.\d+"

    def attention_layers(self) -> dict[str, Any]:
        layers = {
            name: module
            for name, module in self.model.named_modules()
            if name.endswith(".attn") and getattr(module, "add_k_proj", None) is not None
        }
        self.check_processors(layers, self.processors)
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            argument(args, kwargs, 3, "timestep"),
            argument(args, kwargs, 1, "encoder_hidden_states"),
            patch=int(self.denoiser.config.patch_size),
            counts=not kwargs.get("skip_layers"),
        )

    def projections(self, attn: Any) -> Projections | None:
        """``JointAttnProcessor2_0`` takes the image queries from ``to_q`` then ``norm_q`` and the text keys
        from ``add_k_proj`` then ``norm_added_k`` (both norms per head)."""
        if type(attn.processor).__name__ != "JointAttnProcessor2_0":
            return None
        return Projections(
            attn.norm_q if attn.norm_q is not None else attn.to_q,
            attn.norm_added_k if attn.norm_added_k is not None else attn.add_k_proj,
            attn.norm_q is None,
            attn.norm_added_k is None,
        )

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        image = int(arguments["hidden_states"].shape[1])  # the sequence is [image, text]
        return slice(0, image), slice(image, None)

    def recompute(
        self,
        attn: Any,
        arguments: dict[str, Any],
        rows: slice,
        call: DenoiserCall,
        heads: list[int] | None,
        share: bool,
    ) -> torch.Tensor:
        hidden = arguments["hidden_states"][rows]
        head_dim = attn.to_k.out_features // attn.heads

        def split(x: torch.Tensor, norm: Any) -> torch.Tensor:
            x = x.view(x.shape[0], -1, attn.heads, head_dim).transpose(1, 2)
            return norm(x) if norm is not None else x

        query = split(attn.to_q(hidden), attn.norm_q)
        text_key = split(attn.add_k_proj(arguments["encoder_hidden_states"][rows]), attn.norm_added_k)
        image_key = split(attn.to_k(hidden), attn.norm_k) if share else None
        return joint_probabilities(query, text_key, image_key, 1 / math.sqrt(head_dim), heads)

    def streams(self) -> list[TextStream]:
        clip = int(getattr(self.pipe, "tokenizer_max_length", 77))
        return [
            TextStream("clip", length=clip),
            TextStream("t5", "text_encoder_3", "tokenizer_3", offset=clip),
        ]

    def encode_text(self, prompt: str) -> dict[str, Any]:
        embeddings, _, pooled, _ = self.pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            prompt_3=None,
            device=self.denoiser.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
        return {"encoder_hidden_states": embeddings, "pooled_projections": pooled}

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        t = torch.tensor([float(timestep)], device=latents.device)
        self.denoiser(hidden_states=latents, timestep=t, **text)
