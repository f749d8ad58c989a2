"""LTX-2 video maps traced exactly against an independent computation, frame by frame.

LTX-2's keys are connector outputs, not encoder outputs: the prompt's valid tokens first, then learned
registers. The oracle recomputes each video ``attn2`` from its weights and takes a word's key from the
tokenizer alone (key ``i`` holds the window's ``i``-th valid token); the extra calls of spatio-temporal and
modality-isolation guidance, on the prompt alone, are no steps.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import daam_widget
from daam_widget import testing

PROMPT = "a red dog on a blue hat"
NEGATIVE = "a green cat"
STEPS = 4


def call_of(**options):
    """Guidance as LTX-2 runs it: the ``[negative, positive]`` batch, then spatio-temporal guidance (block 1
    perturbed) and modality-isolation guidance as two calls on the prompt alone, in each step."""
    call = dict(testing.VIDEO_CALLS["ltx2"], negative_prompt=NEGATIVE, num_inference_steps=STEPS)
    return {**call, "prompt": PROMPT, "guidance_scale": 3.0, "output_type": "np", **options}


def seeded():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def pipe():
    pipe = testing.VIDEO_PIPELINES["ltx2"]()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def oracle(pipe):
    """Each video ``attn2``'s probabilities in the guidance batch's calls, from the module's weights (q and
    k projected, RMS-normed across heads, split into heads; softmax(q k^T / sqrt(d) + the key mask) over
    every key, registers included), in float64, summed over heads, layers and steps: ``(rows, latent
    frames, h, w, keys)``, rows ``[negative, positive]``; with the number of transformer calls and the
    pipeline's output."""
    state = {"calls": 0, "sum": 0}

    def transformer(module, args, kwargs):
        state["calls"] += 1
        state["guidance_batch"] = (
            kwargs["hidden_states"].shape[0] == 2
        )  # the extra calls have the prompt alone
        state["grid"] = (kwargs["num_frames"], kwargs["height"], kwargs["width"])  # patches of 1x1x1

    def attention(module, args, kwargs):
        if not state["guidance_batch"]:
            return
        hidden, text, mask = args[0], kwargs["encoder_hidden_states"], kwargs["attention_mask"]
        q = module.norm_q(module.to_q(hidden)).unflatten(-1, (module.heads, -1)).transpose(1, 2).double()
        k = module.norm_k(module.to_k(text)).unflatten(-1, (module.heads, -1)).transpose(1, 2).double()
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask[:, None].double()
        state["sum"] = state["sum"] + scores.softmax(-1).sum(1)

    handles = [pipe.transformer.register_forward_pre_hook(transformer, with_kwargs=True)]
    for block in pipe.transformer.transformer_blocks:
        handles.append(block.attn2.register_forward_pre_hook(attention, with_kwargs=True))
    try:
        out = pipe(generator=seeded(), **call_of())
    finally:
        for handle in handles:
            handle.remove()
    return state["sum"].reshape(2, *state["grid"], -1), state["calls"], out


def word_keys(pipe, text):
    """Each word of ``text`` with its key: every word is one token of the tiny Gemma tokenizer, so word
    ``i`` is the window's valid token ``i + 1`` (after ``<bos>``), which the connector puts at key
    ``i + 1``."""
    words = text.split()
    assert len(pipe.tokenizer(text).input_ids) == len(words) + 1
    return [(word, i + 1) for i, word in enumerate(words)]


def per_frame_sums(maps):
    """Each word span's sums at the token grid ``(latent frames, h, w)``, in word order, with its keys."""
    ((_, sums),) = maps.grids.grids.items()
    spans = [s for s in maps.spans if s.is_word]
    return [(s.tokens, sums[[maps.positions.index(t) for t in s.tokens]].sum(0).double()) for s in spans]


def test_each_words_frames_are_its_video_attention_summed_over_heads_layers_and_steps(pipe):
    expected, calls, _ = oracle(pipe)
    with daam_widget.trace(pipe, keep_negative=True) as tc:
        out = pipe(generator=seeded(), **call_of())
    assert calls == 3 * STEPS  # guidance batch, spatio-temporal guidance, modality isolation
    worst = 0.0
    for row, (text, negative) in enumerate([(NEGATIVE, True), (PROMPT, False)]):
        maps = tc.heat_maps(prompt=text, negative=negative)
        assert maps.grids.grids.keys() == {(8, 16)}
        for (word, key), (tokens, got) in zip(word_keys(pipe, text), per_frame_sums(maps), strict=True):
            assert tokens == (key,), word  # located by position among the keys
            want = expected[row, ..., key]
            assert got.shape == want.shape == (3, 8, 16)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
            worst = max(worst, float(((got - want).abs() / want.abs()).max()))
    assert worst <= 1e-4
    # decoded frame j maps latent frame (0 if j == 0 else (j - 1) // 4 + 1), upsampled bicubically
    maps = tc.heat_maps(prompt=PROMPT)
    assert maps.video_shape == (9, 32, 64) and maps.temporal_factor == 4
    want = expected[1, ..., dict(word_keys(pipe, PROMPT))["dog"]]
    for j, source in enumerate([0, 1, 1, 1, 1, 2, 2, 2, 2]):
        up = F.interpolate(want[source][None, None].float(), size=(32, 64), mode="bicubic")
        np.testing.assert_allclose(maps["dog"][j], up[0, 0].clamp(min=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(maps.video, np.round(out.frames[0] * 255).astype(np.uint8))


def test_the_connector_puts_the_windows_valid_tokens_first_then_its_registers(pipe):
    """What the family's key rule rests on, seen in the model: the video connector's first block gets the
    projected window's valid tokens (a left-padded window's last ``n``) at the first ``n`` keys, in order,
    and the learned registers (tiled by absolute position) at the rest."""
    seen = {}
    connectors = pipe.connectors
    hooks = [
        connectors.text_proj_in.register_forward_hook(lambda m, a, out: seen.update(projected=out)),
        connectors.video_connector.transformer_blocks[0].register_forward_pre_hook(
            lambda m, args: seen.update(keys=args[0])
        ),
    ]
    try:
        stacked, mask, _, _ = pipe.encode_prompt(
            PROMPT, do_classifier_free_guidance=False, max_sequence_length=16
        )
        connectors(stacked, mask)
    finally:
        for hook in hooks:
            hook.remove()
    window, valid = mask.shape[1], int(mask.sum())
    assert mask[0].tolist() == [0] * (window - valid) + [1] * valid
    registers = connectors.video_connector.learnable_registers
    torch.testing.assert_close(
        seen["keys"][0, :valid], seen["projected"][0, window - valid :], rtol=0, atol=0
    )
    torch.testing.assert_close(
        seen["keys"][0, valid:], registers.repeat(window // len(registers), 1)[valid:], rtol=0, atol=0
    )


def test_the_video_and_audio_are_bit_identical_to_an_untraced_run(pipe):
    untraced = pipe(generator=seeded(), **call_of())
    with daam_widget.trace(pipe):
        traced = pipe(generator=seeded(), **call_of())
    np.testing.assert_array_equal(traced.frames, untraced.frames)
    torch.testing.assert_close(traced.audio, untraced.audio, rtol=0, atol=0)


def test_each_step_counts_once_and_the_extra_guidance_calls_not_at_all(pipe):
    with daam_widget.trace(pipe) as tc:
        pipe(generator=seeded(), **call_of())
    assert tc.num_steps == STEPS and tc.num_images == 1
    with daam_widget.trace(pipe) as tc:  # guidance off: the batch is the prompt alone
        pipe(generator=seeded(), **call_of(guidance_scale=1.0, audio_guidance_scale=1.0))
    assert tc.num_steps == STEPS and tc.heat_maps().words == tuple(PROMPT.split())
