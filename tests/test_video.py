"""Video maps: Wan 2.1, Wan 2.2 and CogVideoX traced exactly against independent computations, frame by
frame."""

import contextlib
import io

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import traitlets as t
from PIL import Image

import daam_widget
from daam_widget import HeatMaps, StepMaps, testing

PROMPT = "a red dog on a blue hat"
FAMILIES = ["wan", "wan2.2", "cogvideox"]


def call_of(name, **options):
    """The family's tiny call (5 frames: 3 latent frames, the first alone, then 2 frames each), guided."""
    call = dict(testing.VIDEO_CALLS[name], negative_prompt="a green cat", num_inference_steps=4)
    return {**call, "guidance_scale": 3.0, "output_type": "np", **options}


def decoded(data):
    """The pixels of PNG or JPEG bytes."""
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def seeded():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    pipe = testing.VIDEO_PIPELINES[request.param]()
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe


def wan_oracle(pipe, call):
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
        frames = pipe(PROMPT, generator=seeded(), **call).frames[0]
    finally:
        for handle in handles:
            handle.remove()
    f, h, w = total["grid"]
    return total["sum"].reshape(f, h, w, -1), frames


def cogvideox_oracle(pipe, call, softmax_over="text"):
    """The q and k CogVideoX's processor hands to ``scaled_dot_product_attention`` (its norms and rotary
    positions applied: the processor's own tensors), over [text, video] in a ``[negative, positive]``
    batch; the video queries' softmax over the text keys (``"all"``: over every key, then the text part),
    in float64, of the positive rows, summed over heads, layers and steps."""
    total, grid = {}, {}
    original = F.scaled_dot_product_attention

    def spy(query, key, value, *args, **kwargs):
        if not grid.get("inside"):  # the text encoder's attention
            return original(query, key, value, *args, **kwargs)
        text, video = grid["text"], grid["tokens"]
        q, k = query[query.shape[0] // 2 :].double(), key[key.shape[0] // 2 :].double()
        scores = q[:, :, text:] @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        p = scores[..., :text].softmax(-1) if softmax_over == "text" else scores.softmax(-1)[..., :text]
        assert scores.shape[-2] == video
        total["sum"] = total.get("sum", 0) + p.sum(1)[0]
        return original(query, key, value, *args, **kwargs)

    def shape(module, args, kwargs):
        latents = kwargs["hidden_states"]  # (batch, frames, channels, h, w), 2x2 patches
        f, h, w = latents.shape[1], latents.shape[3] // 2, latents.shape[4] // 2
        grid.update(grid=(f, h, w), tokens=f * h * w, text=kwargs["encoder_hidden_states"].shape[1])
        grid["inside"] = True

    def leave(*_):
        grid["inside"] = False

    with contextlib.ExitStack() as stack:
        stack.callback(pipe.transformer.register_forward_pre_hook(shape, with_kwargs=True).remove)
        stack.callback(pipe.transformer.register_forward_hook(leave).remove)
        stack.enter_context(_patched(F, "scaled_dot_product_attention", spy))
        frames = pipe(prompt=PROMPT, generator=seeded(), **call).frames[0]
    return total["sum"].reshape(*grid["grid"], -1), frames


@contextlib.contextmanager
def _patched(owner, name, value):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


ORACLES = {"wan": wan_oracle, "wan2.2": wan_oracle, "cogvideox": cogvideox_oracle}


def test_video_maps_are_each_frames_attention_summed_over_heads_layers_and_steps(family):
    name, pipe = family
    expected, frames = ORACLES[name](pipe, call_of(name))
    with daam_widget.trace(pipe) as tc:
        traced = pipe(prompt=PROMPT, generator=seeded(), **call_of(name)).frames[0]
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


def test_cogvideox_with_softmax_over_all_keys_is_the_models_own_probabilities():
    pipe = testing.VIDEO_PIPELINES["cogvideox"]()
    pipe.set_progress_bar_config(disable=True)
    expected, _ = cogvideox_oracle(pipe, call_of("cogvideox"), softmax_over="all")
    with daam_widget.trace(pipe, softmax_over="all") as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call_of("cogvideox"))
    maps = tc.heat_maps(prompt=PROMPT)
    ((_, sums),) = maps.grids.grids.items()
    tokens = list(maps.span("dog").tokens)
    got = sums[[maps.positions.index(t) for t in tokens]].sum(0).double()
    torch.testing.assert_close(got, expected[..., tokens].sum(-1), rtol=1e-4, atol=1e-6)


def test_a_video_masks_over_the_clip_or_frame_by_frame_and_gives_each_frame_as_image_maps(family):
    name, pipe = family
    with daam_widget.trace(pipe) as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call_of(name))
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


@pytest.mark.parametrize("name", sorted(testing.VIDEO_PIPELINES))
def test_processors_and_hooks_come_back_after_an_interrupted_video(name):
    """Every video family's: the processors are the same objects, and every module of the denoisers, the
    text encoders and the VAE's decoder has the hooks it had before (transformers installs its own
    output-capturing hooks on a text encoder's first call, so an untraced call comes first)."""
    pipe = testing.VIDEO_PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    call = {**testing.VIDEO_CALLS[name], "num_inference_steps": 2}
    pipe(prompt=PROMPT, generator=seeded(), **call)
    models = [
        getattr(pipe, n) for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None
    ]
    processors = [{n: m.processor for n, m in t.named_modules() if hasattr(m, "processor")} for t in models]
    encoders = [m for n, m in vars(pipe).items() if n.startswith("text_encoder") and m is not None]
    parts = [part for module in (*models, *encoders, pipe.vae.decoder) for part in module.modules()]
    hooks = [(dict(part._forward_hooks), dict(part._forward_pre_hooks)) for part in parts]

    def stop(trace):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with daam_widget.trace(pipe, on_step=stop):
            pipe(prompt=PROMPT, generator=seeded(), **call)
    for model, before in zip(models, processors, strict=True):
        after = {n: m.processor for n, m in model.named_modules() if hasattr(m, "processor")}
        assert after.keys() == before.keys() and all(after[n] is p for n, p in before.items())
    for part, before in zip(parts, hooks, strict=True):  # submodules too: Wan I2V's norms are hooked
        assert (dict(part._forward_hooks), dict(part._forward_pre_hooks)) == before, type(part).__name__


def test_a_dataset_run_writes_each_videos_maps_and_the_gallery_shows_its_middle_frame(family, tmp_path):
    name, pipe = family
    call = {k: v for k, v in call_of(name).items() if k not in ("output_type", "negative_prompt")}
    rows = daam_widget.run(pipe, [PROMPT, "a blue cat"], tmp_path, progress=False, per_step=True, **call)
    assert [r.prompt for r in rows] == [PROMPT, "a blue cat"]
    with daam_widget.trace(pipe) as tc:  # the run's first video: its seed is the run's, 0
        frames = pipe(prompt=PROMPT, generator=seeded(), output_type="np", **call).frames[0]
    saved = HeatMaps.load(tmp_path / rows[0].file)
    np.testing.assert_array_equal(saved.video, (frames * 255).round().astype(np.uint8))
    np.testing.assert_allclose(saved["dog"], tc.heat_maps(prompt=PROMPT)["dog"], rtol=2e-3, atol=1e-6)
    assert StepMaps.load(tmp_path / rows[0].steps_file).latent_frames == 3
    gallery = daam_widget.DaamGallery(tmp_path)
    middle = decoded(gallery._thumbnail(0, []))
    np.testing.assert_array_equal(middle, saved.video[2])  # frame 2 of 5, at its own 32x48
    assert gallery.show(0).latent_frames == 3
    analysis = daam_widget.analysis.analyze_run(tmp_path)  # areas and pairs over space and time
    assert analysis.images == 2 and not analysis.skipped


def test_a_videos_step_maps_keep_every_latent_frame_and_save(family, tmp_path):
    name, pipe = family
    expected, _ = ORACLES[name](pipe, call_of(name))
    with daam_widget.trace(pipe, per_step=True) as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call_of(name))
    steps = tc.step_maps(0, prompt=PROMPT)
    ((grid, record),) = steps.maps.items()
    words = len(steps.words)
    assert (grid, record.shape, steps.latent_frames) == ((8, 12), (4, words, 3, 8, 12), 3)
    for word in ("red", "dog", "blue", "hat"):
        k = steps.words.index(word)
        want = expected[..., list(steps.layout.find(word).tokens)].sum(-1)
        torch.testing.assert_close(record[:, k].sum(0).double(), want, rtol=2e-3, atol=1e-5)  # float16
    assert steps.mass().shape == (4, 1, words)
    np.testing.assert_allclose(steps.mass().sum((0, 1)), record.sum((0, 2, 3, 4)).numpy(), rtol=1e-5)
    steps.save(tmp_path / "steps.safetensors")
    loaded = StepMaps.load(tmp_path / "steps.safetensors")
    torch.testing.assert_close(loaded.maps[grid], record, rtol=1e-3, atol=0)


def test_the_widget_sends_each_latent_frames_sums_the_frames_and_each_words_share_of_every_frame(family):
    name, pipe = family
    expected, frames = ORACLES[name](pipe, call_of(name))
    w = daam_widget.DaamWidget(pipe, PROMPT, seed=0, show=False, **call_of(name))
    assert w.status == "ready", w.error
    words, (gh, gw) = len(w.words), w.map_grid
    assert (w.latent_frames, gh, gw) == (3, 8, 12)
    assert w.frame_sources == [0, 1, 1, 2, 2]  # frame 0 alone, then 2 frames a latent frame
    maps = np.frombuffer(w.maps, np.uint8).reshape(3, words, gh, gw) / 255
    peaks = np.array(w.peaks).reshape(3, words, 1, 1)
    step_maps = np.frombuffer(w.step_maps, np.uint8).reshape(3, 4, words, gh, gw) / 255
    scales = np.frombuffer(w.step_scales, "<f4").reshape(3, 4, words, 1, 1)
    mass = np.frombuffer(w.frame_mass, "<f4").reshape(words, 5)
    for word in ("red", "dog", "blue", "hat"):
        k = w.words.index(word)
        want = expected[..., list(w.heat_maps.span(word).tokens)].sum(-1).numpy()
        top = want.reshape(3, -1).max(1)[:, None, None]
        # each (latent frame, word) sum in 8 bits of its own peak
        assert (np.abs(maps[:, k] * peaks[:, k] - want) <= top * (0.5 / 255 + 1e-4)).all()
        # each step's record, summed, is the sum over the steps (to its 8-bit rounding per step)
        summed = (step_maps[:, :, k] * scales[:, :, k]).sum(1)
        assert np.abs(summed - want).max() <= 4 * scales[:, :, k].max() / 255
        # over the frames as shown: each latent frame's sum upsampled to 32x48 (Eq. 6), then summed
        up = F.interpolate(torch.from_numpy(want)[:, None].float(), size=(32, 48), mode="bicubic")
        share = up.clamp(min=0).sum((1, 2, 3)).numpy()[[0, 1, 1, 2, 2]]
        np.testing.assert_allclose(mass[k], share / share.sum(), rtol=1e-4)
    sent = [decoded(w.video[o : o + n]) for o, n in w.video_frames]
    assert len(sent) == 5
    for got, frame in zip(sent, frames, strict=True):  # the pipeline's frames, in order, as JPEG at 85
        buffer = io.BytesIO()
        Image.fromarray((frame * 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=85)
        np.testing.assert_array_equal(got, decoded(buffer.getvalue()))


def test_the_widget_shows_each_latent_frames_maps_so_far_while_a_video_is_generated(family, monkeypatch):
    from daam_widget import _widget_session

    monkeypatch.setattr(_widget_session, "LIVE_INTERVAL_S", 0.0)
    name, pipe = family
    live = []
    w = daam_widget.DaamWidget(pipe, show=False, **call_of(name, num_inference_steps=2))
    w.observe(lambda c: live.append((w.status, w.frame_sources, w.map_grid, w.maps, c.new)), "peaks")
    w.generate(PROMPT, seed=0)
    ((_, sources, grid, data, peaks),) = [f for f in live if f[0] == "generating"]  # after step 1 of 2
    assert (sources, grid) == ([0, 1, 2], (8, 12))  # no decoded frames yet: a frame per latent frame
    words = len(w.words)
    shown = np.frombuffer(data, np.uint8).reshape(3, words, 8, 12) / 255 * np.reshape(peaks, (3, words, 1, 1))
    ((first_step, _),) = [m.unbind(0) for m in w.trace.step_maps(0, prompt=PROMPT).maps.values()]
    want = first_step.transpose(0, 1).numpy()  # the record's step 0 (checked against the oracle above)
    assert (np.abs(shown - want) <= want.reshape(3, words, -1).max(-1)[..., None, None] / 255).all()


def test_the_widget_shows_a_frame_of_a_video_and_refuses_one_past_its_end(family):
    name, pipe = family
    w = daam_widget.DaamWidget(pipe, PROMPT, show=False, **call_of(name))
    w.frame = 4
    with pytest.raises(t.TraitError, match=r"frame must be 0\.\.4, not 5"):
        w.frame = 5
    w.compare_to = 0  # the history entry of a video holds its middle frame's maps, as an image's
    h, m = w.other["map_size"]
    assert len(w.other_maps) == len(w.words) * h * m and w.other_image[:4] == b"\x89PNG"
    shown = daam_widget.DaamWidget.from_heat_maps(w.heat_maps)
    assert (shown.latent_frames, shown.frame_sources, shown.maps) == (3, w.frame_sources, w.maps)
    with pytest.raises(t.TraitError, match="frame must be 0: these maps are an image's"):
        daam_widget.DaamWidget.from_heat_maps(w.heat_maps.frame(0)).frame = 1


def test_a_videos_animation_is_each_frame_under_its_map_with_the_masks_outline(tmp_path):
    maps = testing.moving_clip_maps(frames=5, size=(64, 96), grid=(16, 24), temporal_factor=1)
    w = daam_widget.DaamWidget.from_heat_maps(maps, selected="dog", tau=0.4)
    path = w.save_animation(tmp_path / "dog.gif")  # the widget's opacity (0.6), colours, τ and word
    with Image.open(path) as animation:
        assert animation.n_frames == 5
        pictures = []
        for j in range(5):
            animation.seek(j)
            pictures.append(np.asarray(animation.convert("RGB"), dtype=float))
    soft, inferno = maps.soft("dog"), matplotlib.colormaps["inferno"]
    masks = soft >= 0.4 * soft.max()
    for j, picture in enumerate(pictures):
        want = 0.4 * maps.video[j] + 0.6 * inferno(soft[j] / soft.max())[..., :3] * 255
        white = np.all(picture == 255, axis=-1) & ~np.all(want > 245, axis=-1)
        assert white.any() and masks[j][white].all()  # the outline lies on the clip-wide mask
        assert np.abs(picture - want)[~white].mean() < 4  # in GIF's 256 colours
    with pytest.raises(ValueError, match=r"an animation is written as \.gif or \.webp, not 'dog.mp4'"):
        w.save_animation(tmp_path / "dog.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dog.gif"]


def test_a_videos_maps_save_and_load_with_their_frames(family, tmp_path):
    name, pipe = family
    with daam_widget.trace(pipe) as tc:
        pipe(prompt=PROMPT, generator=seeded(), **call_of(name))
    maps = tc.heat_maps(prompt=PROMPT)
    maps.save(tmp_path / "video.safetensors")
    loaded = HeatMaps.load(tmp_path / "video.safetensors")
    assert isinstance(loaded, type(maps)) and loaded.video_shape == maps.video_shape
    np.testing.assert_array_equal(loaded.video, maps.video)
    for word in ("dog", "hat"):  # float16 with a scale per map and frame: within 5e-4 of each frame's peak
        peak = np.abs(maps[word]).max(axis=(1, 2), keepdims=True)
        assert np.all(np.abs(loaded[word] - maps[word]) <= 5e-4 * peak + 1e-7)


def test_wans_recomputed_probabilities_are_the_processors_own():
    """Where a processor's q and k are not seen (another attention backend), Wan recomputes them from the
    module: rows and heads chosen, the same softmax as the oracle's, from the weights."""
    from daam_widget._backbones import backbone_for

    pipe = testing.VIDEO_PIPELINES["wan"]()
    attn = pipe.transformer.blocks[0].attn2
    hidden, text = torch.randn(2, 48, 32), torch.randn(2, 16, 32)
    arguments = {"hidden_states": hidden, "encoder_hidden_states": text}
    got = backbone_for(pipe).recompute(attn, arguments, slice(1, 2), None, [1], False)
    q = attn.norm_q(attn.to_q(hidden[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    k = attn.norm_k(attn.to_k(text[1:])).unflatten(-1, (2, -1)).transpose(1, 2)[:, [1]].double()
    want = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1).sum(1)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(testing.VIDEO_PIPELINES))
def test_attribute_image_says_a_video_pipeline_makes_videos(name):
    pipe = testing.VIDEO_PIPELINES[name]()
    message = f"attribute_image attributes an image; {type(pipe).__name__} makes videos"
    with pytest.raises(NotImplementedError, match=message):
        daam_widget.attribute_image(pipe, np.zeros((32, 64, 3), np.uint8), PROMPT)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("hunyuanvideo1.5", {"patch_size_t": 2}),
        ("ltx2", {"patch_size_t": 2}),
        ("sana-video", {"patch_size": (2, 2, 2)}),
    ],
)
def test_a_token_spanning_several_latent_frames_is_refused_with_the_reason(name, config):
    pipe = testing.VIDEO_PIPELINES[name]()
    pipe.transformer.register_to_config(**config)  # read by the tracer only: the model is not rebuilt
    with pytest.raises(NotImplementedError, match="with a temporal patch of 2 puts several latent frames"):
        with daam_widget.trace(pipe):
            pipe(prompt=PROMPT, generator=seeded(), **testing.VIDEO_CALLS[name], num_inference_steps=1)
