"""HunyuanVideo-1.5 text-to-video: double-stream blocks whose one attention call runs over [video, text]
per sample, video tokens in (frame, row, column) order, under an S x S boolean mask.

The prompt goes into a Qwen2.5-VL chat template (the pipeline's system message on describing a video,
then the prompt as the user's turn, then the generation prompt), padded on the right; the pipeline keeps
the third-to-last hidden layer and drops the first ``prompt_template_encode_start_idx`` (108) positions,
the system turn. The transformer then packs each sample's text keys as [valid image-condition tokens,
valid ByT5 tokens, valid Qwen2.5-VL tokens, every invalid token], the invalid ones masked out. So a
sample's word keys are its valid Qwen2.5-VL tokens (the prompt's, then the template's closing ones), and
they start after its valid image-condition and ByT5 keys: the family reads both counts from the
transformer's inputs and places each row's keys where they are.

ByT5 reads only the prompt's quoted text, rewritten as ``Text "...". `` (zeros and an empty mask
without quotes): its tokens are bytes of that sentence, not the prompt's words, so they are not a stream.
The image-condition tokens (SigLIP's, for image-to-video) are zeros and masked in text-to-video. With
``softmax_over="text"`` each row's softmax runs over its Qwen2.5-VL keys alone; with ``"all"`` the maps
are the model's own probabilities, whose softmax covers every key the mask lets through: the video's, the
ByT5 tokens' and (in image-to-video) the image condition's too.

Guidance is diffusers' ``ClassifierFreeGuidance`` guider: the prompt's call, then the negative prompt's
(default "") as a second transformer call in the same step; steps outside the guider's start/stop range
have the prompt's call alone.

The VAE (``AutoencoderKLHunyuanVideo15``) is causal: the first frame is encoded alone and every following
``temporal_compression_ratio`` (4) frames into one latent frame, 16x in space; the transformer's patches
are 1 x 1 x 1, so a latent frame's tokens are its latent pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.nn.utils.rnn import pad_sequence

from .._text_streams import Template, TextStream, valid_from
from ._base import DenoiserCall, JointBackbone, Layout, argument, one_frame_per_token


@dataclass
class _Call(DenoiserCall):
    """A denoiser call with where each row's prompt keys start among its text keys."""

    prompt_starts: tuple[int, ...] = ()


class HunyuanVideo15Backbone(JointBackbone):
    name = "HunyuanVideo-1.5"
    pipelines: ClassVar[tuple[str, ...]] = ("HunyuanVideo15Pipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn"
    processors: ClassVar[tuple[str, ...]] = ("HunyuanVideo15AttnProcessor2_0",)
    negative_in_separate_call = True
    video = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        config = self.denoiser.config
        one_frame_per_token(self.name, config.patch_size_t)
        latents = argument(args, kwargs, 0, "hidden_states")  # (batch, channels, frames, h, w)
        batch, _, frames, h, w = (int(n) for n in latents.shape)
        inputs = (
            argument(args, kwargs, 2, "encoder_hidden_states"),
            argument(args, kwargs, 3, "encoder_attention_mask"),
            argument(args, kwargs, 6, "encoder_attention_mask_2"),
            argument(args, kwargs, 7, "image_embeds"),
        )
        prompt, lengths, starts = self.once_per("text", inputs, _prompt_keys)
        patch, scale = int(config.patch_size), int(self.pipe.vae_scale_factor_spatial)
        return _Call(
            batch=batch,
            timestep=argument(args, kwargs, 1, "timestep"),
            embeddings=prompt,
            grid=(frames, h // patch, w // patch),
            image_size=(h * scale, w * scale),
            text_lengths=lengths,
            temporal_factor=int(self.pipe.vae_scale_factor_temporal),
            prompt_starts=starts,
        )

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        """Video queries first; each row's prompt keys after the video and its other valid text keys (one
        pair for all rows where they agree, so that the rows are computed together)."""
        assert isinstance(call, _Call) and call.text_lengths is not None
        video = math.prod(call.grid)
        layouts = [
            (slice(0, video), slice(video + start, video + start + length))
            for start, length in zip(call.prompt_starts, call.text_lengths, strict=True)
        ]
        return layouts[0] if all(layout == layouts[0] for layout in layouts) else layouts

    def streams(self) -> list[TextStream]:
        pipe = self.pipe

        def render(prompt: str) -> str:
            system = {"role": "system", "content": pipe.system_message}
            messages = [system, {"role": "user", "content": prompt}]
            rendered = pipe.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(rendered)

        template = Template.around(render, special_tokens=False)
        keys = valid_from(int(pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=template, keys=keys)]


def _prompt_keys(parts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    """From the transformer's Qwen2.5-VL text and mask, ByT5 mask and image embeddings: each row's valid
    Qwen2.5-VL tokens from its first position (zeros after: the keys' text in key order), their number, and
    where they start among the row's text keys (after its valid image-condition and ByT5 tokens; the
    transformer counts image-condition tokens only where some image embedding is not zero)."""
    text, mask, glyph_mask, image = parts
    valid = mask.bool()
    lengths = valid.sum(1).tolist()
    packed = pad_sequence(list(text[valid].split(lengths)), batch_first=True)
    conditions = 0 if bool((image == 0).all()) else int(image.shape[1])
    starts = tuple(conditions + int(n) for n in glyph_mask.bool().sum(1).tolist())
    return packed, tuple(lengths), starts
