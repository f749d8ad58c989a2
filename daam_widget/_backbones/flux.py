"""Flux.1: 19 double-stream blocks (joint attention over [text, image]) and 38 single-stream blocks.

Double-stream blocks see text as ``encoder_hidden_states``; single-stream blocks get the sequence already
concatenated and no ``encoder_hidden_states``, so the text length comes from the transformer's inputs.
Rotary embeddings act on queries and keys of both (text rows get position 0, the identity). Latents are
packed 2x2, so the token grid is (H/16, W/16) for the usual VAE. Keys are T5 tokens: CLIP gives only the
pooled vector. Flux.1-dev is guidance-distilled (no unconditional batch); true CFG runs the negative
prompt as a second transformer call after the positive one in each step.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from diffusers.models.embeddings import apply_rotary_emb

from .._probabilities import joint_probabilities
from .._text_streams import TextStream
from ._base import DenoiserCall, JointBackbone, argument


class FluxLayoutBackbone(JointBackbone):
    """Flux.1's transformer layout, which later families build on: double- and single-stream blocks whose
    ``attn`` modules run joint attention, latents packed ``packing`` x ``packing`` with position ids
    ``img_ids``, and the negative prompt as a second call. Traced at the processors' attention call."""

    layer_pattern: ClassVar[str] = r".*\.attn"
    negative_in_separate_call = True
    packing: ClassVar[int] = 2
    """Latent pixels per token side (Flux packs 2x2)."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(pipe)
        self._grid_of: tuple[Any, tuple[int, int]] | None = None

    def attention_layers(self) -> dict[str, Any]:
        layers = super().attention_layers()
        if any(getattr(m, "fused_projections", False) for m in layers.values()):
            raise TypeError(
                f"{self.name} with fused q/k/v projections is not supported; call "
                "pipe.transformer.unfuse_qkv_projections() before tracing"
            )
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = argument(args, kwargs, 0, "hidden_states")
        grid = self._grid(kwargs.get("img_ids"), int(latents.shape[1]))
        scale = self.packing * int(self.pipe.vae_scale_factor)
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs.get("timestep"),
            embeddings=argument(args, kwargs, 1, "encoder_hidden_states"),
            grid=grid,
            image_size=(grid[0] * scale, grid[1] * scale),
        )

    def _grid(self, image_ids: torch.Tensor | None, tokens: int) -> tuple[int, int]:
        """(rows, columns) of the packed latent from its position ids ``(tokens, 3)``: (0, row, column).
        Read once per ids tensor: it costs a device sync."""
        if image_ids is None:
            raise ValueError("the Flux transformer was called without img_ids; the token grid is unknown")
        if self._grid_of is None or self._grid_of[0] is not image_ids:
            ids = image_ids.reshape(-1, image_ids.shape[-1])[:tokens]
            rows, columns = ids[:, 1], ids[:, 2]  # counted from 0, or from an offset (LongCat: 512)
            grid = (int(rows.max() - rows.min()) + 1, int(columns.max() - columns.min()) + 1)
            self._grid_of = (image_ids, grid)
        return self._grid_of[1]

    def pixel_multiple(self) -> tuple[int, str]:
        scale = int(self.pipe.vae_scale_factor)
        return 2 * scale, f"{2 * scale} (the VAE's factor {scale} times Flux's 2x2 packing)"


class FluxBackbone(FluxLayoutBackbone):
    name = "Flux.1"
    pipelines = ("FluxPipeline",)
    concept_blocks_pattern = r"transformer_blocks\.\d+"
    processors: ClassVar[tuple[str, ...]] = ("FluxAttnProcessor", "FluxAttnProcessor2_0")

    def recompute(
        self,
        attn: Any,
        arguments: dict[str, Any],
        rows: slice,
        call: DenoiserCall,
        heads: list[int] | None,
        share: bool,
    ) -> torch.Tensor:
        if arguments.get("attention_mask") is not None:
            raise NotImplementedError("Flux attention with an attention_mask is not supported")
        hidden = arguments["hidden_states"][rows]
        context = arguments.get("encoder_hidden_states")
        n_text = call.text_length
        rotary = arguments.get("image_rotary_emb")
        if context is not None:  # double-stream: image and text come apart
            image, text = hidden, context[rows]
            text_key = attn.add_k_proj(text)
            text_norm = attn.norm_added_k
        else:  # single-stream: [text, image] in one sequence
            image, text = hidden[:, n_text:], hidden[:, :n_text]
            text_key = attn.to_k(text)
            text_norm = attn.norm_k

        def prepare(x: torch.Tensor, norm: Any, positions: slice) -> torch.Tensor:
            x = norm(x.unflatten(-1, (-1, attn.head_dim)))
            if rotary is not None:
                frequencies = (rotary[0][positions], rotary[1][positions])
                x = apply_rotary_emb(x, frequencies, sequence_dim=1)  # type: ignore[arg-type,assignment]
            return x.transpose(1, 2)

        image_rows, text_rows = slice(n_text, None), slice(0, n_text)
        query = prepare(attn.to_q(image), attn.norm_q, image_rows)
        text_key = prepare(text_key, text_norm, text_rows)
        image_key = prepare(attn.to_k(image), attn.norm_k, image_rows) if share else None
        return joint_probabilities(query, text_key, image_key, 1 / math.sqrt(attn.head_dim), heads)

    def streams(self) -> list[TextStream]:
        return [TextStream("t5", "text_encoder_2", "tokenizer_2")]

    def encode_text(self, prompt: str) -> dict[str, Any]:
        embeddings, pooled, text_ids = self.pipe.encode_prompt(
            prompt=prompt, prompt_2=None, device=self.denoiser.device, num_images_per_prompt=1
        )
        return {"encoder_hidden_states": embeddings, "pooled_projections": pooled, "txt_ids": text_ids}

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        _, channels, h, w = latents.shape
        packed = self.pipe._pack_latents(latents, 1, channels, h, w)
        ids = self.pipe._prepare_latent_image_ids(1, h // 2, w // 2, latents.device, latents.dtype)
        guidance = None
        if self.denoiser.config.guidance_embeds:  # dev's default guidance
            guidance = torch.tensor([3.5], device=latents.device)
        t = torch.tensor([timestep / 1000], device=latents.device)
        self.denoiser(hidden_states=packed, timestep=t, guidance=guidance, img_ids=ids, **text)
