"""LTX-2 text-to-video: an audio-video transformer whose video tokens, (frame, row, column) in order,
cross-attend to the prompt in every block (``transformer_blocks.N.attn2``).

The prompt is Gemma-3's window, padded on the left, its hidden states of every layer stacked per token. A
connector (a small transformer) turns them into the keys: it moves the window's valid tokens to the front,
in order, and puts learned registers where the padding was, so key ``k`` holds the ``k``-th valid token of
the window, whatever its position there, and the keys after the valid tokens hold registers and no token.
The keys' values are the connector's outputs, which no encoder output equals: the family hands the tracer,
as the text the keys come from, Gemma's last hidden state moved to the same places (its valid tokens first,
zeros at the registers), which locates each word by position and tells the prompt's window from the negative
prompt's. The registers are keys like the tokens, under no mask: they take their share of every softmax
(``softmax_over="text"`` and ``"all"`` are the same, as in any cross-attention).

The maps are over the video alone. The audio tokens are denoised alongside: their own cross-attention to
the prompt (``audio_attn2``, keys from the connector's audio stream), the video's attention to the audio
(``audio_to_video_attn``) and the audio's to the video (``video_to_audio_attn``) are not traced, and the
audio VAE and vocoder are not watched. Guidance is one ``[negative, positive]`` batch (on when the video's
or the audio's guidance scale is above 1); spatio-temporal guidance and modality-isolation guidance add
calls on the prompt alone in the same step, which are not steps and are not recorded. The causal video VAE
encodes the first frame alone and every following 8 frames (the VAE's temporal factor) into one latent frame,
32x32 pixels to a latent pixel, one token each.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream, valid_from
from ._base import Backbone, DenoiserCall, one_frame_per_token, pipeline_call_locals


class LTX2Backbone(Backbone):
    name = "LTX-2"
    pipelines: ClassVar[tuple[str, ...]] = ("LTX2Pipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn2"
    processors: ClassVar[tuple[str, ...]] = ("LTX2AudioVideoAttnProcessor", "LTX2PerturbedAttnProcessor")
    video = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        config = self.denoiser.config
        one_frame_per_token(self.name, config.patch_size_t)
        latents, text = kwargs["hidden_states"], kwargs["encoder_hidden_states"]
        extra = bool(kwargs.get("isolate_modalities") or kwargs.get("spatio_temporal_guidance_blocks"))
        patch, scale = int(config.patch_size), int(self.pipe.vae_spatial_compression_ratio)
        h, w = int(kwargs["height"]), int(kwargs["width"])
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs["timestep"],
            embeddings=text if extra else self.once_per("text", (text,), self._keys_text),
            grid=(int(kwargs["num_frames"]), h // patch, w // patch),
            image_size=(h * scale, w * scale),
            counts=not extra,
            temporal_factor=int(self.pipe.vae_temporal_compression_ratio),
        )

    def _keys_text(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Gemma's last hidden state where the connector puts each token among the keys (``(connector
        output,)`` -> ``(batch, keys, features)``), from the running pipeline call's stacked hidden states
        and window mask; the connector's output itself outside a pipeline call."""
        (connector_text,) = parts
        if self.pipe.connectors.video_connector.learnable_registers is None:
            raise NotImplementedError(
                "LTX-2 connectors without learned registers keep the padding among the keys; not traced yet"
            )
        running = pipeline_call_locals(self.pipe)
        stacked, mask = running.get("prompt_embeds"), running.get("prompt_attention_mask")
        if stacked is None or mask is None or stacked.shape[:2] != connector_text.shape[:2]:
            return connector_text
        last = stacked.unflatten(2, (int(self.pipe.connectors.config.caption_channels), -1))[..., -1]
        order = torch.argsort(1 - mask.long(), dim=1, stable=True)  # the valid positions first, in order
        tokens = mask.gather(1, order)[..., None].to(last.dtype)
        return last.gather(1, order[..., None].expand_as(last)) * tokens

    def streams(self) -> list[TextStream]:
        return [TextStream("gemma", template=Template(padding_side="left"), keys=valid_from(0))]
