"""Kandinsky 5 text-to-video and SanaVideo traced exactly against independent computations, frame by frame.

Each oracle computes every cross-attention layer's probabilities from the module's weights and the inputs
it was called with (q and k projected and normed as the model's paper and config say, softmax(q kᵀ/√d)
per head, plus the padding's -10000 bias in SanaVideo), in float64, of the prompt's rows only: Kandinsky 5
runs the prompt first and the negative prompt in a second call, SanaVideo batches ``[negative,
positive]``. Each word's keys come from the tokenizer alone (one token per word in the tiny tokenizers).
"""

import contextlib
import inspect
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import daam_widget
from daam_widget import HeatMaps, testing

PROMPT = "a red dog on a blue hat"
WORDS = ("red", "dog", "blue", "hat")
STEPS = 4
SANA_WINDOW = 300
"""SanaVideo's default ``max_sequence_length``: its keys are ``<bos>`` and the window's last 299."""


def seeded():
    return torch.Generator().manual_seed(0)


def call_of(name, **options):
    """The family's tiny call (3 latent frames), guided, the video as float frames."""
    call = dict(testing.VIDEO_CALLS[name], negative_prompt="a green cat", num_inference_steps=STEPS)
    return {**call, "guidance_scale": 3.0, "output_type": "np", **options}


@pytest.fixture(scope="module", params=["kandinsky5-t2v", "sana-video"])
def family(request):
    pipe = testing.VIDEO_PIPELINES[request.param]()
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe


@contextlib.contextmanager
def _hooked(module, hook):
    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _run_hooked(pipe, call, on_transformer, layers, on_attention):
    """The pipeline's frames, ``on_transformer`` run before each transformer call and ``on_attention``
    before each call of ``layers``."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_hooked(pipe.transformer, on_transformer))
        for layer in layers:
            stack.enter_context(_hooked(layer, on_attention))
        return pipe(prompt=PROMPT, generator=seeded(), **call).frames[0]


def kandinsky_oracle(pipe, call):
    """Each visual block's cross-attention in the prompt's calls (the first of each step): q and k from
    ``to_query`` and ``to_key``, split into heads and RMS-normed per head in float32 as the module does.
    ``(latent frames, h, w, keys)`` summed over heads, layers and steps, and the frames."""
    state = {"calls": 0, "sum": 0}

    def transformer(module, args, kwargs):
        state["calls"] += 1
        f, h, w = kwargs["hidden_states"].shape[1:4]  # (batch, frames, h, w, channels), 1x2x2 patches
        state["grid"] = (f, h // 2, w // 2)

    def attention(module, args, kwargs):
        if state["calls"] % 2 == 0:  # the negative prompt's call
            return
        heads = module.num_heads
        q = module.to_query(args[0]).unflatten(-1, (heads, -1))
        k = module.to_key(kwargs["encoder_hidden_states"]).unflatten(-1, (heads, -1))
        q = module.query_norm(q.float()).transpose(1, 2).double()
        k = module.key_norm(k.float()).transpose(1, 2).double()
        state["sum"] = (
            state["sum"] + torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1).sum(1)[0]
        )

    layers = [block.cross_attention for block in pipe.transformer.visual_transformer_blocks]
    frames = _run_hooked(pipe, call, transformer, layers, attention)
    return state["sum"].reshape(*state["grid"], -1), frames


def sana_oracle(pipe, call):
    """Each block's ``attn2`` on the batch's positive half: q and k from ``to_q`` and ``to_k``, RMS-normed
    across heads, then split; the mask's -10000 bias on the padding keys. ``(latent frames, h, w, keys)``
    summed over heads, layers and steps, and the frames."""
    state = {"sum": 0}

    def transformer(module, args, kwargs):
        f, h, w = args[0].shape[2:]  # (batch, channels, frames, h, w), 1x2x2 patches
        state["grid"] = (f, h // 2, w // 2)

    def attention(module, args, kwargs):
        half = args[0].shape[0] // 2
        heads, text, bias = module.heads, kwargs["encoder_hidden_states"], kwargs["attention_mask"]
        q = module.norm_q(module.to_q(args[0][half:])).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        k = module.norm_k(module.to_k(text[half:])).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + bias[half:, None].double()
        state["sum"] = state["sum"] + torch.softmax(scores, -1).sum(1)[0]

    layers = [block.attn2 for block in pipe.transformer.transformer_blocks]
    frames = _run_hooked(pipe, call, transformer, layers, attention)
    return state["sum"].reshape(*state["grid"], -1), frames


def kandinsky_keys(pipe, prompt):
    """Each key's token: the template's ids after the system turn, which the pipeline drops by count."""
    ids = pipe.tokenizer(pipe.prompt_template.format(prompt))["input_ids"]
    return [pipe.tokenizer.decode([i]).strip() for i in ids[pipe.prompt_template_encode_start_idx :]]


def sana_keys(pipe, prompt):
    """Each key's token: ``<bos>``, then the last 299 positions of the window of the default instruction
    and the lower-cased prompt, padded to the instruction's length plus 298."""
    default = inspect.signature(type(pipe).__call__).parameters["complex_human_instruction"].default
    instruction, tok = "\n".join(default), pipe.tokenizer
    length = len(tok.encode(instruction)) + SANA_WINDOW - 2
    ids = tok(instruction + prompt.lower(), padding="max_length", max_length=length)["input_ids"]
    return [tok.decode([ids[p]]).strip() for p in [0, *range(length - SANA_WINDOW + 1, length)]]


ORACLES = {"kandinsky5-t2v": (kandinsky_oracle, kandinsky_keys), "sana-video": (sana_oracle, sana_keys)}
FRAMES = {"kandinsky5-t2v": [0, 1, 1, 1, 1, 2, 2, 2, 2], "sana-video": [0, 1, 1, 2, 2]}
"""The latent frame each decoded frame comes from: the first alone, then 4 (HunyuanVideo's VAE) or 2 (the
tiny Wan VAE) frames a latent frame."""


def word_keys(name, pipe, prompt):
    """Each word of ``prompt`` with its key (one token a word), found in order among the keys' tokens."""
    pieces, keys, start = ORACLES[name][1](pipe, prompt), [], 0
    for word in prompt.split():
        start = pieces.index(word, start)
        keys.append((word, (start,)))
        start += 1
    return keys


def relative_error(got, want):
    """The largest error of a ``(latent frames, h, w)`` map, each latent frame's relative to its peak."""
    return float(((got - want).abs().flatten(1).amax(1) / want.abs().flatten(1).amax(1)).max())


def test_each_latent_frames_maps_are_its_attention_to_the_words_keys(family):
    name, pipe = family
    expected, frames = ORACLES[name][0](pipe, call_of(name))
    with daam_widget.trace(pipe) as tc:
        traced = pipe(prompt=PROMPT, generator=seeded(), **call_of(name)).frames[0]
    np.testing.assert_array_equal(traced, frames)  # the video is unchanged
    assert tc.num_steps == STEPS  # each step once: the negative prompt's call (or rows) adds none
    maps = tc.heat_maps(prompt=PROMPT)
    keys = word_keys(name, pipe, PROMPT)
    assert [(s.text, s.tokens) for s in maps.spans if s.is_word] == keys
    ((grid, sums),) = maps.grids.grids.items()
    assert (grid, sums.shape[1:]) == (expected.shape[1:3], expected.shape[:3])
    for _, tokens in keys:  # every word, each "a" too
        got = sums[[maps.positions.index(t) for t in tokens]].sum(0).double()
        assert relative_error(got, expected[..., list(tokens)].sum(-1)) <= 1e-4
    np.testing.assert_array_equal(maps.video, np.round(frames * 255).astype(np.uint8))
    # decoded frame j shows its latent frame's map, upsampled bicubically to the frame
    _, height, width = maps.video_shape
    for word in WORDS:
        want = expected[..., list(maps.span(word).tokens)].sum(-1)
        for j, source in enumerate(FRAMES[name]):
            up = F.interpolate(want[source][None, None].float(), size=(height, width), mode="bicubic")
            np.testing.assert_allclose(maps[word][j], up[0, 0].clamp(min=0), rtol=1e-4, atol=1e-5)


def test_the_widget_plays_each_latent_frames_maps_over_its_decoded_frames(family):
    name, pipe = family
    w = daam_widget.DaamWidget(pipe, PROMPT, seed=0, show=False, **call_of(name))
    assert w.status == "ready", w.error
    assert (w.latent_frames, w.frame_sources) == (3, FRAMES[name])
    assert len(w.video_frames) == len(FRAMES[name])


def test_the_negative_prompts_words_have_maps_when_kept(family):
    """Kandinsky 5 encodes the negative prompt in its template, in a call of its own; SanaVideo without
    the instruction, in the batch's first half."""
    name, pipe = family
    with daam_widget.trace(pipe, keep_negative=True) as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call_of(name, output_type="latent"))
    assert tc.heat_maps(negative=True).words == ("a", "green", "cat")
    assert tc.heat_maps(prompt=PROMPT).words == tuple(PROMPT.split())


def test_a_long_kandinsky5_clip_is_decoded_in_blended_parts_the_widget_and_runs_keep_the_pipelines_frames(
    tmp_path,
):
    """More than 4 latent frames: HunyuanVideo's VAE decodes parts of 5 latent frames, 3 apart, and blends
    them outside its decoder, whose parts are then not the clip; the maps are still every frame's."""
    pipe = testing.VIDEO_PIPELINES["kandinsky5-t2v"]()
    pipe.set_progress_bar_config(disable=True)
    call = call_of("kandinsky5-t2v", num_frames=21, num_inference_steps=2)  # 6 latent frames
    expected, frames = kandinsky_oracle(pipe, call)
    with daam_widget.trace(pipe) as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call)
    with pytest.warns(UserWarning, match=r"overlapping parts \(\d+ frames for a clip of 21\)"):
        maps = tc.heat_maps(prompt=PROMPT)
    assert len(frames) == 21 and maps.video is None and maps["dog"].shape == (21, 32, 48)
    ((_, sums),) = maps.grids.grids.items()
    tokens = list(maps.span("dog").tokens)
    got = sums[[maps.positions.index(t) for t in tokens]].sum(0).double()
    assert relative_error(got, expected[..., tokens].sum(-1)) <= 1e-4
    with pytest.warns(UserWarning, match="overlapping parts"):  # the widget shows the pipeline's frames
        w = daam_widget.DaamWidget(pipe, PROMPT, show=False, **{**call, "output_type": "pil"})
    assert len(w.video_frames) == 21 and w.heat_maps.video.shape == (21, 32, 48, 3)
    np.testing.assert_array_equal(w.heat_maps.video, (frames * 255).round().astype(np.uint8))
    out = tmp_path / "run"
    run_call = {k: v for k, v in call.items() if k not in ("output_type", "negative_prompt")}
    with pytest.warns(UserWarning, match="overlapping parts"):  # a dataset run keeps them too
        (row,) = daam_widget.run(pipe, [PROMPT], out, progress=False, **run_call)
    assert HeatMaps.load(out / row.file).video.shape == (21, 32, 48, 3)


def test_kandinsky5_with_nabla_attention_is_refused():
    """Sparse "nabla" attention orders the video tokens in 8 x 8 blocks, not as the grid."""
    pipe = testing.VIDEO_PIPELINES["kandinsky5-t2v"]()
    pipe.set_progress_bar_config(disable=True)
    sparse = {"attention_P": 0.9, "attention_wT": 3, "attention_wH": 3, "attention_wW": 3}
    pipe.transformer.register_to_config(attention_type="nabla", attention_add_sta=True, **sparse)
    with pytest.raises(NotImplementedError, match=r"nabla attention orders the video tokens in blocks"):
        with daam_widget.trace(pipe):
            pipe(prompt=PROMPT, generator=seeded(), **call_of("kandinsky5-t2v", num_inference_steps=1))
    assert not pipe.transformer._forward_pre_hooks


def test_sana_video_traces_a_binned_size_of_its_table_and_refuses_one_it_resizes():
    """With resolution binning the pipeline generates at its table's nearest size and resizes the video to
    the size asked for: a size of the table is traced, another refused. (The 480p table, patched to tiny
    sizes.)"""
    pipe = testing.VIDEO_PIPELINES["sana-video"]()
    pipe.set_progress_bar_config(disable=True)
    table = {"0.5": [32.0, 64.0], "1.0": [32.0, 32.0]}
    binned = call_of("sana-video", use_resolution_binning=True, num_inference_steps=1)
    with mock.patch.dict(
        "diffusers.pipelines.sana_video.pipeline_sana_video.ASPECT_RATIO_480_BIN", table, clear=True
    ):
        with daam_widget.trace(pipe) as tc:
            pipe(prompt=PROMPT, generator=seeded(), **binned)
        assert tc.heat_maps(prompt=PROMPT).video_shape == (5, 32, 64)
        with pytest.raises(
            NotImplementedError, match=r"generated at 32x64 .* resizes the video to the 64x128"
        ):
            with daam_widget.trace(pipe):
                pipe(prompt=PROMPT, generator=seeded(), **{**binned, "height": 64, "width": 128})


def test_sana_videos_recomputed_probabilities_are_the_processors_own():
    """Where the attention call is not seen (another attention backend), SanaVideo's ``attn2`` is computed
    again from the module: norms across heads before the split, the mask's bias, rows and heads chosen."""
    from daam_widget._backbones import backbone_for

    pipe = testing.VIDEO_PIPELINES["sana-video"]()
    attn = pipe.transformer.transformer_blocks[0].attn2
    hidden, text = torch.randn(2, 48, 32), torch.randn(2, 16, 32)
    bias = torch.zeros(2, 1, 16)
    bias[:, :, 9:] = -10000.0
    arguments = {"hidden_states": hidden, "encoder_hidden_states": text, "attention_mask": bias}
    got = backbone_for(pipe).recompute(attn, arguments, slice(1, 2), None, [1], False)
    q = attn.norm_q(attn.to_q(hidden[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    k = attn.norm_k(attn.to_k(text[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + bias[1:, None].double()
    want = torch.softmax(scores, -1).sum(1)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
