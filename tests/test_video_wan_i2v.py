"""Wan image-to-video maps traced exactly against an independent computation, frame by frame.

Wan 2.1 I2V's transformer puts the first frame's CLIP features before the text that each ``attn2`` gets,
and its processor attends to them in a second attention call of its own. The oracle reads each ``attn2``'s
arguments: the text keys are the last positions, as many as the transformer's text input has; the image's
call is left out. Wan 2.2 I2V A14B (two transformers, the image in the latents alone) runs the same checks.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import daam_widget
from daam_widget import testing
from daam_widget._backbones import DenoiserCall, backbone_for
from daam_widget.testing._video_pipelines import wan_i2v_pipeline

PROMPT = "a red dog on a blue hat"
STEPS = 4
IMAGE_TOKENS = {"wan2.1-i2v": 5, "wan2.2-i2v": 0}
"""The image-condition tokens before the text in ``attn2``'s keys (2 x 2 CLIP patches and its class token)."""


def seeded():
    return torch.Generator().manual_seed(0)


def call_of(**options):
    """The tiny call (5 frames: 3 latent frames, the first alone, then 2 frames each) from the catalog's
    first frame, guided: the negative prompt is a second transformer call in each step."""
    call = dict(testing.VIDEO_CALLS["wan-i2v"], negative_prompt="a green cat", num_inference_steps=STEPS)
    return {**call, "guidance_scale": 3.0, "output_type": "np", **options}


@pytest.fixture(scope="module", params=list(IMAGE_TOKENS))
def variant(request):
    pipe = wan_i2v_pipeline(two_stage=request.param == "wan2.2-i2v")
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe


def models_of(pipe):
    return [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]


def oracle(pipe, call):
    """Each ``attn2``'s text probabilities in the prompt's calls (the first of each step), from the module's
    weights: q = norm_q(to_q(video tokens)), k = norm_k(to_k(the text keys alone)), softmax(q k^T / sqrt(d))
    over the text keys per head, in float64, summed over heads, layers and steps: ``(latent frames, h, w,
    text keys)``; with the frames the pipeline returns and the image tokens each ``attn2`` was given."""
    state = {"calls": 0, "sum": 0, "image_tokens": set()}

    def transformer(module, args, kwargs):
        state["calls"] += 1
        shape = kwargs["hidden_states"].shape  # (batch, latents + condition, frames, h, w), 1x2x2 patches
        state["grid"] = (shape[2], shape[3] // 2, shape[4] // 2)
        state["text"] = kwargs["encoder_hidden_states"].shape[1]

    def attention(module, args, kwargs):
        if state["calls"] % 2 == 0:  # the negative prompt's call
            return
        hidden, context = args[0], args[1]
        text = context[:, context.shape[1] - state["text"] :]
        state["image_tokens"].add(context.shape[1] - state["text"])
        heads = module.heads
        q = module.norm_q(module.to_q(hidden)).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        k = module.norm_k(module.to_k(text)).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        state["sum"] = (
            state["sum"] + torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1).sum(1)[0]
        )

    handles = []
    for model in models_of(pipe):
        handles.append(model.register_forward_pre_hook(transformer, with_kwargs=True))
        for name, module in model.named_modules():
            if name.endswith("attn2"):
                handles.append(module.register_forward_pre_hook(attention, with_kwargs=True))
    try:
        frames = pipe(prompt=PROMPT, generator=seeded(), **call).frames[0]
    finally:
        for handle in handles:
            handle.remove()
    return state["sum"].reshape(*state["grid"], -1), frames, state["image_tokens"]


def word_sums(maps):
    """Each word's tokens and per-latent-frame sums ``(latent frames, h, w)`` at the one token grid,
    float64, in the prompt's order (both "a"s)."""
    ((grid, sums),) = maps.grids.grids.items()
    assert grid == (8, 12) and sums.shape[1] == 3
    words = [s.tokens for s in maps.spans if s.is_word]
    assert len(words) == len(PROMPT.split())
    return [(t, sums[[maps.positions.index(p) for p in t]].sum(0).double()) for t in words]


def test_each_words_frames_are_the_text_attention_alone_summed_over_heads_layers_and_steps(variant):
    name, pipe = variant
    expected, frames, image_tokens = oracle(pipe, call_of())
    assert image_tokens == {IMAGE_TOKENS[name]} and expected.shape[-1] == 512  # umT5's window, after them
    with daam_widget.trace(pipe) as tc:
        traced = pipe(prompt=PROMPT, generator=seeded(), **call_of()).frames[0]
    np.testing.assert_array_equal(traced, frames)  # the video is unchanged
    assert tc.num_steps == STEPS  # each step once: the negative prompt's calls and the second model add none
    maps = tc.heat_maps(prompt=PROMPT)
    for word, (tokens, got) in enumerate(word_sums(maps)):
        want = expected[..., list(tokens)].sum(-1)
        assert ((got - want).abs() / want).max() <= 1e-4
        # decoded frame j maps latent frame (0 if j == 0 else (j - 1) // 2 + 1), upsampled bicubically
        for j, source in enumerate([0, 1, 1, 2, 2]):
            up = F.interpolate(want[source][None, None].float(), size=(32, 48), mode="bicubic")
            np.testing.assert_allclose(maps[word][j], up[0, 0].clamp(min=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(maps.video, np.round(frames * 255).astype(np.uint8))


def test_the_image_conditions_attention_call_changes_the_video_and_no_map():
    """In one step, the last block's image keys reach nothing that a traced attention call sees: new
    ``add_k_proj`` weights there change the video and leave every map as it was, bit for bit."""
    pipe = testing.VIDEO_PIPELINES["wan-i2v"]()
    pipe.set_progress_bar_config(disable=True)
    call = call_of(num_inference_steps=1)

    def traced():
        with daam_widget.trace(pipe) as tc:
            frames = pipe(prompt=PROMPT, generator=seeded(), **call).frames[0]
        return frames, word_sums(tc.heat_maps(prompt=PROMPT))

    before, sums_before = traced()
    image_keys = pipe.transformer.blocks[-1].attn2.add_k_proj
    with torch.no_grad():
        image_keys.weight.copy_(torch.randn_like(image_keys.weight) * 3)
    after, sums_after = traced()
    assert np.abs(after - before).max() > 1e-3
    for (_, got), (_, want) in zip(sums_after, sums_before, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_wan_i2vs_recomputed_probabilities_are_the_text_calls_alone():
    """Where the processor's q and k are not seen, Wan recomputes them from ``attn2``'s arguments: of its
    [image, text] keys, the text's, the last as many as the denoiser call's text has."""
    pipe = testing.VIDEO_PIPELINES["wan-i2v"]()
    attn = pipe.transformer.blocks[0].attn2
    hidden, image, text = torch.randn(2, 48, 32), torch.randn(2, 5, 32), torch.randn(2, 16, 32)
    arguments = {"hidden_states": hidden, "encoder_hidden_states": torch.cat([image, text], 1)}
    call = DenoiserCall(batch=2, timestep=0, embeddings=text, grid=(1, 6, 8), image_size=(12, 16))
    got = backbone_for(pipe).recompute(attn, arguments, slice(1, 2), call, [1], False)
    q = attn.norm_q(attn.to_q(hidden[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    k = attn.norm_k(attn.to_k(text[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    want = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1).sum(1)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_the_widget_passes_the_first_frame_to_the_pipeline_and_plays_the_video(variant):
    _, pipe = variant
    call = {k: v for k, v in call_of().items() if k != "output_type"}
    w = daam_widget.DaamWidget(pipe, PROMPT, show=False, **call)  # `image` is the pipeline's, not a trait
    assert w.status == "ready", w.error
    assert (w.latent_frames, len(w.frame_sources), w.image[:4]) == (3, 5, b"\x89PNG")
