"""Video maps: Wan 2.1 and 2.2 traced exactly against an independent computation, frame by frame."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import daam_widget
from daam_widget import HeatMaps, testing

PROMPT = "a red dog on a blue hat"
CALL = dict(
    **testing.VIDEO_CALLS["wan"],  # 5 frames: 3 latent frames, the first alone, then 2 frames each
    negative_prompt="a green cat",
    num_inference_steps=4,
    guidance_scale=3.0,
    output_type="np",
)


def seeded():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module", params=["wan", "wan2.2"])
def pipe(request):
    pipe = testing.VIDEO_PIPELINES[request.param]()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def oracle(pipe):
    """Each ``attn2``'s probabilities of the prompt's call, computed from the module's weights as written in
    Wan's paper (q, k projected, RMS-normed across heads, softmax(q k^T / sqrt(d)) per head), summed over
    heads, layers and steps: ``(latent frames, h, w, keys)``, and the frames the pipeline returns. The
    prompt's call is the first of each step (the negative prompt's is the second)."""
    calls, total = [0], {}
    models = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]

    def count(module, args, kwargs):
        calls[0] += 1
        shape = kwargs["hidden_states"].shape  # (batch, channels, frames, h, w), patches of 1x2x2
        total.setdefault("grid", (shape[2], shape[3] // 2, shape[4] // 2))

    def attention(module, args, kwargs):
        if calls[0] % 2 == 0:  # the negative prompt's call
            return
        hidden, text = args[0], args[1] if len(args) > 1 else kwargs["encoder_hidden_states"]
        heads = module.heads
        q = module.norm_q(module.to_q(hidden)).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        k = module.norm_k(module.to_k(text)).unflatten(-1, (heads, -1)).transpose(1, 2).double()
        p = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1).sum(1)[0]
        total["sum"] = total.get("sum", 0) + p

    handles = []
    for model in models:
        handles.append(model.register_forward_pre_hook(count, with_kwargs=True))
        for name, module in model.named_modules():
            if name.endswith("attn2"):
                handles.append(module.register_forward_pre_hook(attention, with_kwargs=True))
    try:
        frames = pipe(PROMPT, generator=seeded(), **CALL).frames[0]
    finally:
        for handle in handles:
            handle.remove()
    f, h, w = total["grid"]
    return total["sum"].reshape(f, h, w, -1), frames


def test_video_maps_are_each_frames_attention_summed_over_heads_layers_and_steps(pipe):
    expected, frames = oracle(pipe)
    with daam_widget.trace(pipe) as tc:
        traced = pipe(PROMPT, generator=seeded(), **CALL).frames[0]
    np.testing.assert_array_equal(traced, frames)  # the video is unchanged
    assert tc.num_steps == 4  # each step once: the negative prompt's call and the second model add none
    maps = tc.heat_maps(prompt=PROMPT)
    ((grid, sums),) = maps.grids.grids.items()
    assert grid == (8, 12) and sums.shape[1] == 3
    for word in ("red", "dog", "blue", "hat"):
        tokens = [maps.positions.index(t) for t in maps.span(word).tokens]
        got = sums[tokens].sum(0).double()
        want = expected[..., list(maps.span(word).tokens)].sum(-1)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        # decoded frame j maps latent frame (0 if j == 0 else (j - 1) // 2 + 1), upsampled bicubically
        for j, source in enumerate([0, 1, 1, 2, 2]):
            up = F.interpolate(want[source][None, None].float(), size=(32, 48), mode="bicubic")
            np.testing.assert_allclose(maps[word][j], up[0, 0].clamp(min=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(maps.video, np.round(frames * 255).astype(np.uint8))


def test_a_video_masks_over_the_clip_or_frame_by_frame_and_gives_each_frame_as_image_maps(pipe):
    with daam_widget.trace(pipe) as tc:
        pipe(PROMPT, generator=seeded(), **CALL)
    maps = tc.heat_maps(prompt=PROMPT)
    soft = maps["dog"]
    assert soft.shape == (5, 32, 48) and maps.video_shape == (5, 32, 48)
    np.testing.assert_array_equal(maps.mask("dog", tau=0.5), soft >= 0.5 * soft.max())
    per_frame = soft >= 0.5 * soft.max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(maps.mask("dog", tau=0.5, per_frame=True), per_frame)
    third = maps.frame(2)
    assert isinstance(third, HeatMaps) and third.settings["latent_frame"] == 1
    np.testing.assert_allclose(third["dog"], soft[2], rtol=1e-6)
    np.testing.assert_array_equal(third.image, maps.video[2])
    a, b = maps.mask("red"), maps.mask("dog")
    assert maps.iou("red", "dog") == pytest.approx((a & b).sum() / (a | b).sum())
    assert maps.iou("red", "dog", frame=3) == pytest.approx(maps.frame(3).iou("red", "dog"))
    shares = maps.attention_over_frames("dog")
    np.testing.assert_allclose(shares, soft.sum((1, 2)) / soft.sum(), rtol=1e-5)
    with pytest.raises(IndexError, match="frame 5 is out of range; the video has 5 frames"):
        maps.frame(5)


def test_processors_and_hooks_come_back_after_an_interrupted_video(pipe):
    models = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]
    processors = [{n: m.processor for n, m in t.named_modules() if hasattr(m, "processor")} for t in models]

    def stop(trace):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with daam_widget.trace(pipe, on_step=stop):
            pipe(PROMPT, generator=seeded(), **CALL)
    for model, before in zip(models, processors, strict=True):
        after = {n: m.processor for n, m in model.named_modules() if hasattr(m, "processor")}
        assert all(after[n] is p for n, p in before.items())
        assert not model._forward_hooks and not model._forward_pre_hooks
    assert not pipe.vae.decoder._forward_hooks


def test_the_widget_says_it_does_not_play_videos_yet(pipe):
    with pytest.raises(ValueError, match="DaamWidget shows images; WanPipeline makes videos"):
        daam_widget.DaamWidget(pipe, PROMPT, show=False)


def test_a_videos_maps_save_and_load_with_their_frames(pipe, tmp_path):
    with daam_widget.trace(pipe) as tc:
        pipe(PROMPT, generator=seeded(), **CALL)
    maps = tc.heat_maps(prompt=PROMPT)
    maps.save(tmp_path / "video.safetensors")
    loaded = HeatMaps.load(tmp_path / "video.safetensors")
    assert isinstance(loaded, type(maps)) and loaded.video_shape == maps.video_shape
    np.testing.assert_array_equal(loaded.video, maps.video)
    for word in ("dog", "hat"):  # float16 with a scale per map and frame: within 5e-4 of each frame's peak
        peak = np.abs(maps[word]).max(axis=(1, 2), keepdims=True)
        assert np.all(np.abs(loaded[word] - maps[word]) <= 5e-4 * peak + 1e-7)
