"""HunyuanVideo-1.5 video maps traced exactly against an independent computation, frame by frame.

The oracle takes the q and k the processor hands to ``scaled_dot_product_attention`` in each double-stream
block (after its norms and rotary positions), finds each row's prompt keys from the transformer's inputs
alone (after the video tokens, the row's valid ByT5 tokens, then its valid Qwen2.5-VL tokens; no
image-condition token is valid in text-to-video) and each word's key from the tokenizer alone (the word's
token in the chat template, less the system turn the pipeline crops). The prompt's calls are those with the
text of a run's first call: the guider runs the negative prompt second.
"""

import contextlib
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import daam_widget
from daam_widget import testing

PLAIN = "a red dog on a blue hat"
QUOTED = 'a red dog on a "blue" hat'  # ByT5 reads 'Text "blue". ': its keys come before the prompt's
STEPS = 4


def seeded():
    return torch.Generator().manual_seed(0)


def call_of(prompts, **options):
    """The tiny call (5 frames: 3 latent frames, the first alone, then 2 frames each), guided; one negative
    prompt per prompt (the pipeline does not repeat a single one)."""
    call = dict(testing.VIDEO_CALLS["hunyuanvideo1.5"], num_inference_steps=STEPS, output_type="np")
    return {**call, "prompt": prompts, "negative_prompt": ["a green cat"] * len(prompts), **options}


@pytest.fixture(scope="module")
def pipe():
    pipe = testing.VIDEO_PIPELINES["hunyuanvideo1.5"]()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def oracle(pipe, call, softmax_over="text"):
    """Each block's video-query x prompt-key probabilities in the prompt's calls, in float64, summed over
    heads, layers and steps: per row ``(latent frames, h, w, its prompt keys)``; softmax over the row's
    prompt keys (``"text"``) or over every key the mask lets through (``"all"``, then its prompt keys).
    With the number of the prompt's calls."""
    state = {"sums": None, "inside": False, "first_text": None, "prompt_calls": 0}
    original = F.scaled_dot_product_attention

    def transformer(module, args, kwargs):
        latents, text = kwargs["hidden_states"], kwargs["encoder_hidden_states"]
        assert not kwargs["image_embeds"].any()  # text-to-video: the image-condition tokens are masked
        if state["first_text"] is None:
            state["first_text"] = text
        state["prompt"] = text is state["first_text"]
        state["prompt_calls"] += state["prompt"]
        f, h, w = latents.shape[2], latents.shape[3] // 2, latents.shape[4] // 2  # 2x2 patches
        state["grid"], state["video"] = (f, h, w), f * h * w
        state["glyphs"] = kwargs["encoder_attention_mask_2"].sum(1).long().tolist()
        state["lengths"] = kwargs["encoder_attention_mask"].sum(1).long().tolist()

    def spy(query, key, value, attn_mask=None, **kwargs):
        if state["inside"] and state["prompt"]:
            video, sums = state["video"], state["sums"] or [0] * query.shape[0]
            scale = kwargs.get("scale") or query.shape[-1] ** -0.5
            for row, (glyphs, length) in enumerate(zip(state["glyphs"], state["lengths"], strict=True)):
                keys = slice(video + glyphs, video + glyphs + length)
                scores = query[row, :, :video].double() @ key[row].double().transpose(-1, -2) * scale
                if softmax_over == "text":
                    p = scores[..., keys].softmax(-1)
                else:
                    allowed = attn_mask[row, :, :video].expand_as(scores)
                    p = scores.masked_fill(~allowed, -torch.inf).softmax(-1)[..., keys]
                sums[row] = sums[row] + p.sum(0)
            state["sums"] = sums
        return original(query, key, value, attn_mask=attn_mask, **kwargs)

    def enter(*_):
        state["inside"] = True

    def leave(*_):
        state["inside"] = False

    with contextlib.ExitStack() as stack:
        stack.callback(pipe.transformer.register_forward_pre_hook(transformer, with_kwargs=True).remove)
        for block in pipe.transformer.transformer_blocks:
            stack.callback(block.attn.register_forward_pre_hook(enter).remove)
            stack.callback(block.attn.register_forward_hook(leave).remove)
        stack.enter_context(mock.patch.object(F, "scaled_dot_product_attention", spy))
        pipe(generator=seeded(), **call)
    return [s.reshape(*state["grid"], -1) for s in state["sums"]], state["prompt_calls"]


def word_keys(pipe, prompt):
    """Each word of ``prompt`` with its key, from the tokenizer alone: the position of the word's token (one
    token per word in the tiny tokenizer) in the chat template's ids, less the cropped system turn."""
    messages = [{"role": "system", "content": pipe.system_message}, {"role": "user", "content": prompt}]
    template = pipe.tokenizer.apply_chat_template
    ids = template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    crop = pipe.prompt_template_encode_start_idx
    pieces = [pipe.tokenizer.decode([i]).strip(' "') for i in ids[crop:]]
    words = [w.strip('"') for w in prompt.split()]
    keys, start = [], 0
    for word in words:
        start = pieces.index(word, start)
        keys.append((word, (start,)))
        start += 1
    return keys


CASES = {
    "one video": ([PLAIN], "text"),
    "quoted text, softmax over all keys": ([QUOTED], "all"),
    "rows with their own keys": ([PLAIN, QUOTED], "text"),
    "rows with their own keys, softmax over all keys": ([QUOTED, PLAIN], "all"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_frames_map_is_its_attention_to_the_words_keys_over_heads_layers_and_steps(pipe, case):
    prompts, softmax_over = CASES[case]
    # the VAE decodes one video at a time (its causal mask broadcasts a batch as heads): a batch stays latent
    options = {"output_type": "latent"} if len(prompts) > 1 else {}
    expected, prompt_calls = oracle(pipe, call_of(prompts, **options), softmax_over)
    assert prompt_calls == STEPS
    with daam_widget.trace(pipe, softmax_over=softmax_over) as tc:
        pipe(generator=seeded(), **call_of(prompts, **options))
    for i, prompt in enumerate(prompts):
        maps = tc.heat_maps(i, prompt=prompt)
        words = word_keys(pipe, prompt)
        assert [(s.text, s.tokens) for s in maps.spans if s.is_word] == words
        ((grid, sums),) = maps.grids.grids.items()
        assert grid == (8, 12) and sums.shape[1] == 3
        for _, keys in words:
            got = sums[[maps.positions.index(k) for k in keys]].sum(0).double()
            want = expected[i][..., list(keys)].sum(-1)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_the_video_is_unchanged_and_each_decoded_frame_shows_its_latent_frames_map(pipe):
    untraced = pipe(generator=seeded(), **call_of([PLAIN])).frames[0]
    with daam_widget.trace(pipe) as tc:
        traced = pipe(generator=seeded(), **call_of([PLAIN])).frames[0]
    np.testing.assert_array_equal(traced, untraced)
    maps = tc.heat_maps(prompt=PLAIN)
    assert maps["dog"].shape == maps.video_shape == (5, 32, 48)
    np.testing.assert_array_equal(maps.video, np.round(untraced * 255).astype(np.uint8))
    ((_, sums),) = maps.grids.grids.items()
    latent = sums[[maps.positions.index(t) for t in maps.span("dog").tokens]].sum(0)
    # the causal VAE at 2x in time: decoded frame j shows latent frame 0 if j == 0 else (j - 1) // 2 + 1
    for j, source in enumerate([0, 1, 1, 2, 2]):
        up = F.interpolate(latent[source][None, None].float(), size=(32, 48), mode="bicubic")
        np.testing.assert_allclose(maps["dog"][j], up[0, 0].clamp(min=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stop", [1.0, 0.5])
def test_each_step_counts_once_with_or_without_the_negative_prompts_call(pipe, monkeypatch, stop):
    """The guider runs the negative prompt as a second call in the steps of its range (all, or the first
    half with ``stop=0.5``); a step counts once either way. (A fresh guider: one that has run decides
    whether to encode the negative prompt from its last step's state.)"""
    monkeypatch.setattr(pipe, "guider", pipe.guider.new(stop=stop))
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with daam_widget.trace(pipe) as tc:
            pipe(generator=seeded(), **call_of([PLAIN], output_type="latent"))
    finally:
        hook.remove()
    assert len(calls) == STEPS + int(STEPS * stop)
    assert tc.num_steps == STEPS and tc.heat_maps().settings["num_steps"] == STEPS
