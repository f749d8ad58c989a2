"""The widget model: traits say what the browser draws, and the binary maps are the Eq. 6 maps, max-scaled."""

import base64
import io
import json
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import traitlets
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

from daam_widget import DaamWidget, HeatMaps, testing
from daam_widget import _widget as widget_module
from daam_widget import _widget_session as session_module
from daam_widget._words import layout_from_text

PROMPT = "a red dog, on a hat"
STEPS = 3


@pytest.fixture(scope="module")
def widget(sd1):
    return DaamWidget(sd1, PROMPT, num_inference_steps=STEPS, seed=1)


def synthetic_maps(height: int, width: int, prompt: str = "a red dog") -> HeatMaps:
    """Maps with known values: word k is a ramp times (k + 1), so each word's peak is known."""
    layout = layout_from_text(prompt, testing.clip_tokenizer())
    ramp = torch.linspace(0, 1, height * width).reshape(height, width)
    data = torch.stack([ramp * (p + 1) for p in range(len(layout.used_positions))])
    return HeatMaps(data, layout.used_positions, layout, image=np.zeros((height, width, 3), np.uint8))


def word_maps(w: DaamWidget) -> np.ndarray:
    h, wd = w.map_size
    return np.frombuffer(w.maps, np.uint8).reshape(len(w.words), h, wd)


def test_traits_describe_the_generated_image_and_its_words(widget):
    maps = widget.heat_maps
    assert widget.prompt == PROMPT and widget.status == "ready" and widget.error == ""
    assert widget.words == ["a", "red", "dog", "on", "a", "hat"] == list(maps.words)
    assert [s["text"] for s in widget.spans] == ["a", "red", "dog", ",", "on", "a", "hat"]
    assert [s["word"] for s in widget.spans] == [0, 1, 2, None, 3, 4, 5], "punctuation is not a word"
    png = Image.open(io.BytesIO(widget.image))
    assert png.size[::-1] == tuple(widget.image_size) == maps.shape == (32, 32)
    assert np.array_equal(np.asarray(png), maps.image)
    assert widget.progress == (STEPS, STEPS) and widget.can_generate and widget.seed == 1
    assert widget.resolutions == ["16x16", "8x8", "4x4"]


def test_spans_count_utf16_units_as_the_browser_does_so_emoji_do_not_shift_the_words():
    prompt = "a red 🔴 dog 🐕‍🦺 and 𝒶 hat"
    maps = synthetic_maps(8, 8, prompt)
    encoded = prompt.encode("utf-16-le")
    spans = widget_module.spans_state(maps)
    assert [s["text"] for s in spans if s["word"] is not None][-2:] == ["𝒶", "hat"]
    for span in spans:
        assert encoded[2 * span["start"] : 2 * span["end"]].decode("utf-16-le") == span["text"], span


def test_each_words_bytes_are_its_map_scaled_to_255(widget):
    maps = widget.heat_maps
    stored = word_maps(widget)
    for k in range(len(widget.words)):
        soft = maps.soft(k)
        expected = np.round(soft / soft.max() * 255).astype(np.uint8)
        assert np.array_equal(stored[k], expected), widget.words[k]
        assert widget.peaks[k] == pytest.approx(float(soft.max()), rel=1e-6)


def test_maps_travel_as_binary_buffers_not_json_lists(widget):
    state, buffer_paths, buffers = _remove_buffers(widget.get_state())
    assert ["maps"] in buffer_paths and ["image"] in buffer_paths
    sizes = {path[0]: len(bytes(b)) for path, b in zip(buffer_paths, buffers, strict=True)}
    assert sizes["maps"] == len(widget.words) * 32 * 32
    json.dumps(state)  # the rest is small JSON


@pytest.mark.parametrize(
    ("image", "map_size"),
    [((512, 512), (256, 256)), ((768, 512), (256, 171)), ((1024, 1024), (256, 256)), ((64, 64), (64, 64))],
)
def test_bytes_per_word_are_capped_at_256_pixels_on_the_longer_side(image, map_size):
    w = DaamWidget.from_heat_maps(synthetic_maps(*image))
    assert tuple(w.map_size) == map_size
    assert len(w.maps) == len(w.words) * map_size[0] * map_size[1]
    assert max(map_size) * min(map_size) <= 65_536


def test_downsampled_maps_are_area_means_scaled_to_255():
    maps = synthetic_maps(512, 512)
    w = DaamWidget.from_heat_maps(maps)
    pooled = F.avg_pool2d(torch.from_numpy(maps.soft("dog"))[None], 2)[0].numpy()
    expected = np.round(pooled / pooled.max() * 255)
    assert np.abs(word_maps(w)[2].astype(float) - expected).max() <= 1
    assert w.peaks[2] == pytest.approx(float(maps.soft("dog").max()))


def test_a_word_is_selected_by_text_index_or_occurrence(widget):
    widget.selected = "hat"
    assert widget.selected == 5
    widget.selected = ("a", 1)
    assert widget.selected == 4
    widget.selected = ["a", 0]  # as the browser sends a pair
    assert widget.selected == 0
    widget.selected = 2
    assert widget.selected == 2
    widget.selected = None
    assert widget.selected is None


def test_selecting_an_unknown_or_ambiguous_word_says_what_the_words_are(widget):
    with pytest.raises(traitlets.TraitError, match=r"'dgo' is not a word.*a, red, dog"):
        widget.selected = "dgo"
    with pytest.raises(traitlets.TraitError, match="out of range"):
        widget.selected = 6
    with pytest.raises(traitlets.TraitError, match="'a'"):
        widget.selected = "a"  # twice in the prompt


def test_pins_are_word_indices_without_repeats(widget):
    widget.pinned = ["dog", 5, "dog", ("a", 1)]
    assert widget.pinned == [2, 5, 4]
    widget.pinned = []


def test_tau_view_and_colours_only_take_allowed_values(widget):
    widget.tau = 0.55
    assert widget.tau == 0.55
    for trait, bad in (
        ("tau", 1.5),
        ("tau", -0.1),
        ("tau", float("nan")),
        ("opacity", 2.0),
        ("view", "heatmap"),
        ("colormap", "hot"),
    ):
        with pytest.raises(traitlets.TraitError):
            setattr(widget, trait, bad)
    widget.tau = 0.4


def test_seeds_are_checked_and_a_generator_is_refused_so_the_history_says_what_made_each_image(sd1):
    with pytest.raises(traitlets.TraitError, match="seed must be an integer from 0 to 2\\*\\*64 - 1"):
        DaamWidget(sd1, PROMPT, num_inference_steps=2, seed=2**70)
    with pytest.raises(TypeError, match="pass seed="):
        DaamWidget(sd1, PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
    w = DaamWidget(sd1, PROMPT, num_inference_steps=2, seed=5)
    for bad in (-1, 2**64, 1.5, "7"):
        with pytest.raises(traitlets.TraitError, match="seed must be"):
            w.generate(seed=bad)
        assert w.status == "error" and "seed must be" in w.error
    with pytest.raises(TypeError, match="pass seed="):
        w.generate(generator=torch.Generator().manual_seed(3))
    w.generate(seed=7)
    again = DaamWidget(sd1, PROMPT, num_inference_steps=2, seed=7)
    assert w.image == again.image and [e["seed"] for e in w.history][-1] == 7


def test_generate_regenerates_in_place_and_a_seed_repeats_its_image(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=2, seed=0)
    first_image, first_maps = w.image, w.maps
    w.selected, w.pinned = "dog", ["dog", "hat"]
    maps = w.generate(prompt="a blue square", seed=5)
    assert maps is w.heat_maps and maps.words == ("a", "blue", "square")
    assert (w.prompt, w.words, w.seed) == ("a blue square", ["a", "blue", "square"], 5)
    assert w.selected is None and w.pinned == [], "the old words' choices do not carry over"
    w.generate(prompt=PROMPT, seed=0)
    assert (w.image, w.maps) == (first_image, first_maps), "the same prompt and seed give the same result"
    w.generate(seed=1)
    assert w.prompt == PROMPT and w.image != first_image


def test_generate_message_from_the_browser_regenerates(sd1):
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    w._on_message(w, {"type": "generate", "prompt": "a red hat", "seed": 3}, [])
    assert (w.prompt, w.seed, w.status) == ("a red hat", 3, "ready")


def test_progress_counts_steps_while_generating(sd1):
    seen = []
    w = DaamWidget(sd1, "a dog", num_inference_steps=4)
    w.observe(lambda change: seen.append(change.new), "progress")
    w.generate()
    assert [tuple(p) for p in seen][:4] == [(0, 4), (1, 4), (2, 4), (3, 4)] and w.progress == (4, 4)


def test_choices_given_at_construction_apply_to_the_first_maps(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=2, tau=0.7, view="both", selected="hat", pinned=["dog"])
    assert (w.tau, w.view, w.selected, w.pinned) == (0.7, "both", 5, [2])


def test_one_resolution_shows_only_its_layers(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=2)
    all_maps = w.maps
    w.selected = "dog"
    w.resolution = "8x8"
    only_8 = w.trace.heat_maps(0, prompt=PROMPT, resolutions=[(8, 8)])
    assert np.array_equal(w.heat_maps.soft("dog"), only_8.soft("dog")) and w.maps != all_maps
    assert w.selected == 2, "the chosen word stays"
    with pytest.raises(traitlets.TraitError, match=r"resolution must be one of \['all', '16x16'"):
        w.resolution = "32x32"


def test_pipeline_errors_are_shown_in_the_widget_and_raised_by_generate(sd1):
    bad = {"negative_prompt": ["one", "two"]}  # diffusers refuses: a list against a str prompt
    w = DaamWidget(sd1, "a dog", num_inference_steps=2, **bad)  # the constructor still returns a widget
    assert w.status == "error" and re.search(r"TypeError: `negative_prompt` should be the same type", w.error)
    with pytest.raises(TypeError, match="negative_prompt"):
        w.generate()
    with pytest.raises(ValueError, match="non-empty string"):
        w.generate(prompt="  ")
    assert w.error.startswith("ValueError")


def test_a_message_that_fails_shows_its_error(sd1):
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    w._on_message(w, {"type": "bogus"}, [])
    assert w.status == "error" and "unknown message" in w.error


def test_misuse_says_what_to_do_instead(sd1):
    with pytest.raises(ValueError, match="needs a pipeline"):
        DaamWidget(None, "a dog")
    with pytest.raises(TypeError, match=r"needs a daam_widget\.HeatMaps"):
        DaamWidget.from_heat_maps({"dog": np.zeros((4, 4))})
    saved = DaamWidget.from_heat_maps(synthetic_maps(16, 16))
    with pytest.raises(RuntimeError, match="no pipeline"):
        saved.generate(prompt="a dog")
    with pytest.raises(traitlets.TraitError, match="keep no per-layer sums"):
        saved.resolution = "8x8"
    with pytest.raises(traitlets.TraitError, match="generate first"):
        DaamWidget(sd1).selected = "dog"
    with pytest.raises(RuntimeError, match="no maps to save"):
        DaamWidget(sd1).save_maps()


def test_from_heat_maps_shows_a_saved_file_without_a_pipeline(widget, tmp_path):
    path = widget.save_maps(tmp_path / "maps.safetensors")
    assert str(path.resolve()) in widget.message
    w = DaamWidget.from_heat_maps(HeatMaps.load(path), tau=0.3, selected="hat")
    assert (w.words, w.image, w.tau, w.selected) == (widget.words, widget.image, 0.3, 5)
    shown, saved = (np.frombuffer(x.maps, np.uint8).astype(int) for x in (widget, w))
    assert np.abs(shown - saved).max() <= 1, "the file keeps the maps within float16's rounding"
    assert not w.can_generate and w.trace is None and w.resolutions == []


def test_save_html_is_one_file_with_no_network_and_the_prompt_as_data(sd1, tmp_path):
    prompt = "</script><script>alert(1)</script> <img src=x onerror=alert(1)> a dog"
    w = DaamWidget(sd1, prompt, num_inference_steps=2, tau=0.6)
    page = w.save_html(tmp_path / "w.html").read_text()
    assert page.count("<script") == 2 and page.count("</script>") == 2, "the prompt opens no script"
    assert "<title>DAAM: &lt;/script&gt;&lt;script&gt;" in page
    assert "default-src 'none'" in page, "the page may not fetch anything"
    assert not re.search(
        r"<(script|img|iframe)[^>]*\ssrc=|<link", page.split("<script>")[0] + page.split("</script>")[-1]
    )
    mount = re.search(r"mount\(document.getElementById\(\"daam-widget\"\), (.*), (\{.*\})\);", page)
    state = json.loads(mount.group(1))
    assert state["prompt"] == prompt and state["tau"] == 0.6
    assert state["has_kernel"] is False and state["can_generate"] is False and state["status"] == "ready"
    assert "maps" not in state and "image" not in state, "binary traits travel as base64 buffers"


def test_setting_the_prompt_then_generating_uses_it(sd1):
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    w.prompt = "a green star"
    w.generate()
    assert w.heat_maps.words == ("a", "green", "star")


def step_bytes(w: DaamWidget) -> tuple[np.ndarray, np.ndarray]:
    """``step_maps`` as uint8 (steps, words, gh, gw) and ``step_scales`` as float32 (steps, words)."""
    gh, gw = w.step_grid
    data = np.frombuffer(w.step_maps, np.uint8).reshape(w.num_steps, len(w.words), gh, gw)
    return data, np.frombuffer(w.step_scales, "<f4").reshape(w.num_steps, len(w.words))


def test_every_step_is_kept_by_default_as_bytes_of_each_steps_maps(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=3, resolution="16x16")
    assert w.num_steps == 3 and tuple(w.step_grid) == (16, 16)
    data, scales = step_bytes(w)
    native = w.trace._generations[0].record  # the record is checked against the slow DAAM elsewhere
    spans = [s for s in w.heat_maps.spans if s.is_word]
    for t in range(3):
        for k, span in enumerate(spans):
            expected = native.maps(0, (16, 16), span.tokens)[t].sum(0)
            assert scales[t, k] == pytest.approx(float(expected.max()), rel=1e-6)
            assert np.array_equal(data[t, k], np.round(expected.numpy() / expected.max().item() * 255))
    mass = np.frombuffer(w.step_mass, "<f4").reshape(3, 3, len(w.words))
    assert mass[:, 0, 2].sum() == pytest.approx(
        float(native.maps(0, (16, 16), spans[2].tokens).sum()), rel=1e-4
    )


def test_steps_are_drawn_by_the_browser_and_heat_maps_follow_them(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=3)
    all_maps = w.maps
    w.selected = "dog"
    w.steps = (0, 1)
    assert w.maps == all_maps, "the browser sums step_maps itself: no new maps travel"
    early = w.trace.heat_maps(0, prompt=PROMPT, steps=range(0, 1))
    assert np.array_equal(w.heat_maps.soft("dog"), early.soft("dog")) and w.selected == 2
    w.resolution = "8x8"
    both = w.trace.heat_maps(0, prompt=PROMPT, steps=range(0, 1), resolutions=[(8, 8)])
    assert np.array_equal(w.heat_maps.soft("dog"), both.soft("dog")), "steps and resolution together"
    assert w.steps == (0, 1) and tuple(w.step_grid) == (8, 8)
    for bad in ((2, 1), (0, 4), (-1, 2)):
        with pytest.raises(traitlets.TraitError, match=r"0 <= start < stop <= 3"):
            w.steps = bad
    w.steps = (0, 0)
    w.resolution = "all"
    assert w.maps == all_maps
    w.generate(seed=2)
    assert w.steps == (0, 0) and w.num_steps == 3


def test_steps_given_at_construction_apply_and_saved_maps_have_none(sd1):
    chosen = DaamWidget(sd1, PROMPT, num_inference_steps=3, steps=(1, 3), resolution="16x16")
    expected = chosen.trace.heat_maps(0, prompt=PROMPT, steps=range(1, 3), resolutions=[(16, 16)])
    assert chosen.steps == (1, 3) and np.array_equal(chosen.heat_maps.soft("hat"), expected.soft("hat"))
    saved = DaamWidget.from_heat_maps(chosen.heat_maps)
    assert saved.num_steps == 0 and saved.step_maps == b""
    with pytest.raises(traitlets.TraitError, match="no per-step record"):
        saved.steps = (0, 1)


def test_maps_so_far_are_shown_while_generating(sd1, monkeypatch):
    monkeypatch.setattr(session_module, "LIVE_INTERVAL_S", 0.0)
    frames = []
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    w.observe(lambda c: frames.append((w.status, w.progress[0], c.new, tuple(w.map_size))), "maps")
    w.generate(prompt=PROMPT, seed=4, num_inference_steps=5)
    live = [f for f in frames if f[0] == "generating"]
    assert [f[1] for f in live] == [1, 2, 3, 4], "after every step but the last (which shows the result)"
    assert frames[-1][0] == "ready" and frames[-1][2] == w.maps
    per_grid = w.trace.step_maps(0, prompt=PROMPT).maps
    for _, done, data, size in live:
        so_far = sum(  # Eq. 6 over the steps done: each resolution upsampled bicubically to the image
            F.interpolate(m[:done].sum(0)[None], size=(32, 32), mode="bicubic", align_corners=False)[0]
            for m in per_grid.values()
        ).clamp(min=0)
        expected = np.round(so_far.numpy() / so_far.flatten(1).amax(1).numpy()[:, None, None] * 255)
        shown = np.frombuffer(data, np.uint8).reshape(6, 32, 32)
        assert size == (32, 32) and np.abs(shown.astype(int) - expected).max() <= 1


def test_live_updates_are_throttled(sd1, monkeypatch):
    clock = iter(np.arange(0.0, 100.0, 0.1))  # 0.1 s passes between two reads of the clock
    monkeypatch.setattr(session_module, "_now", lambda: float(next(clock)))
    frames = []
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    w.observe(lambda c: frames.append((w.status, w.progress[0])), "maps")
    w.generate(num_inference_steps=9)
    assert [step for status, step in frames if status == "generating"] == [3, 6], "every 0.3 s >= 0.25 s"


def test_generations_join_the_history_and_one_is_compared_beside_the_current(sd1):
    w = DaamWidget(sd1, "a red dog", num_inference_steps=2, seed=0)
    first_image, first_maps = w.image, w.maps
    first_steps = (w.step_maps, w.step_scales, list(w.step_grid))
    w.generate(prompt="a blue dog", seed=1, num_inference_steps=3)
    assert [(e["prompt"], e["seed"], e["words"]) for e in w.history] == [
        ("a red dog", 0, ["a", "red", "dog"]),
        ("a blue dog", 1, ["a", "blue", "dog"]),
    ]
    at, length = w.history[0]["thumbnail"]
    thumbnail = Image.open(io.BytesIO(w.history_thumbnails[at : at + length]))
    assert max(thumbnail.size) == 64
    w.compare_to = 0
    assert (w.other_image, w.other_maps) == (first_image, first_maps)
    assert w.other["prompt"] == "a red dog" and w.other["words"] == ["a", "red", "dog"]
    assert (w.other_step_maps, w.other_step_scales, w.other["step_grid"]) == first_steps, (
        "every step of the compared entry, for the same steps on both sides"
    )
    assert w.other["num_steps"] == 2 and w.num_steps == 3
    with pytest.raises(traitlets.TraitError, match=r"compare_to must be -1 \(none\) or a history entry 0..1"):
        w.compare_to = 2
    w.max_history = 2
    w.generate(seed=2)
    assert [e["seed"] for e in w.history] == [1, 2] and w.compare_to == 0, "the oldest is dropped"
    w.compare_to = -1
    assert w.other == {} and w.other_maps == b"" and w.other_step_maps == b""


def test_the_notebook_keeps_a_static_picture_for_pages_without_the_widget(widget):
    bundle = widget._fallback_bundle()
    page = bundle["text/html"]
    assert 'class="daam-fallback"' in page and "interactive view needs the widget's scripts" in page
    picture = Image.open(io.BytesIO(base64.b64decode(re.search(r"base64,([^\"]+)", page).group(1))))
    assert picture.format == "PNG" and picture.size[0] >= 6 * 100, "the image and every word"


def test_a_misspelt_pipeline_argument_is_refused_with_the_close_match(sd1):
    refused = r"'num_inference_step' is not an argument of StableDiffusionPipeline or of DaamWidget"
    with pytest.raises(TypeError, match=refused + r"; did you mean 'num_inference_steps'\?"):
        DaamWidget(sd1, "a dog", num_inference_step=2)
    w = DaamWidget(sd1, "a dog", num_inference_steps=1)
    with pytest.raises(TypeError, match=r"'guidance' is not an argument.*did you mean 'guidance_scale'"):
        w.generate(guidance=3.0)


def test_the_static_picture_follows_each_generation(sd1):
    w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    updates = []
    w._fallback = types.SimpleNamespace(update=lambda bundle, raw: updates.append(bundle))
    w.tau = 0.7
    w.generate(prompt="a red hat")
    assert len(updates) == 1 and "every word of: a red hat" in updates[0]["text/html"]


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_generation_shows_its_error_and_the_last_images_maps(sd1, monkeypatch, exception):
    monkeypatch.setattr(session_module, "LIVE_INTERVAL_S", 0.0)
    w = DaamWidget(sd1, PROMPT, num_inference_steps=2)
    before = (w.prompt, w.words, w.maps, w.image, w.num_steps)
    w.steps = (0, 1)
    assert w.heat_maps.settings["steps"] == [0], "w.heat_maps follows the steps shown"
    processors = dict(sd1.unet.attn_processors)

    def stop(pipe, step, timestep, kwargs):
        if step == 2:
            raise exception("stop")
        return kwargs

    with pytest.raises(exception):
        w.generate(prompt="a blue square", num_inference_steps=4, callback_on_step_end=stop)
    assert w.status == "error" and w.error == f"{exception.__name__}: stop"
    assert (w.prompt, w.words, w.maps, w.image, w.num_steps) == before, "not the partial maps of the run"
    assert all(sd1.unet.attn_processors[k] is v for k, v in processors.items())
    w.generate(num_inference_steps=2, callback_on_step_end=None)
    assert w.prompt == "a blue square" and w.status == "ready", "generate() retries what was asked"


class _Cell:
    """A notebook kernel's shell as the widget sees it: the running cell's execution count."""

    kernel = object()
    execution_count = 7


def test_in_a_notebook_the_widget_shows_under_its_cell_before_the_first_generation_runs(sd1, monkeypatch):
    shown, steps = [], []
    kind = {"application/vnd.jupyter.widget-view+json": "widget", "text/html": "picture"}
    monkeypatch.setattr(widget_module, "_kernel_shell", lambda: _Cell)
    monkeypatch.setattr(
        "IPython.display.display",
        lambda data, **options: shown.append((next(kind[k] for k in data if k in kind), len(steps))),
    )
    counting = sd1.unet.register_forward_pre_hook(lambda *_: steps.append(1))
    try:
        w = DaamWidget(sd1, "a dog", num_inference_steps=2)
    finally:
        counting.remove()
    assert shown == [("widget", 0), ("picture", 2)], (
        "the view before the pipeline runs; the static picture once the maps exist"
    )
    w._ipython_display_()
    assert len(shown) == 2, "the cell's value is the widget already shown under it: not shown twice"
    monkeypatch.setattr(_Cell, "execution_count", 8)
    w._ipython_display_()
    assert [k for k, _ in shown[2:]] == ["picture", "widget"], "a later cell shows it again"
    DaamWidget(sd1, "a dog", num_inference_steps=1, show=False)
    assert len(shown) == 4, "show=False: shown only where displayed"


def test_renormalised_maps_show_the_content_words_sharing_each_pixel(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=STEPS, seed=1, show=False)
    daam = w.heat_maps
    w.map_kind = "renormalized"
    assert w.words == ["red", "dog", "hat"] and w.num_steps == 0
    assert w.map_note == "each pixel shared among red, dog, hat alone; left out: a, on, a"
    expected = daam.renormalized()
    np.testing.assert_allclose(w.heat_maps["dog"], expected["dog"])
    total = sum(w.heat_maps[word] for word in w.words)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    w.map_kind = "daam"
    assert w.words == list(daam.words) and w.num_steps == STEPS and w.map_note == ""


def test_concepts_generate_the_same_image_again_with_their_maps():
    pipe = testing.flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    call = dict(num_inference_steps=2, max_sequence_length=24, height=32, width=48)
    w = DaamWidget(pipe, "a cat and a dog", show=False, **call)
    assert w.concepts_available and w.map_kind == "daam"
    image = w.image
    w.concepts = ["cat", "blue sky"]
    assert w.status == "ready" and w.image == image and w.map_kind == "concepts"
    assert len(w.history) == 1, "the same image again is not a new history entry"
    assert w.words == ["cat", "blue sky"] and w.map_note.startswith(
        "ConceptAttention maps of the joint blocks"
    )
    expected = w.trace.concept_maps(0)
    np.testing.assert_allclose(w.heat_maps["blue sky"], expected["blue sky"])
    w.concepts = []
    assert w.map_kind == "daam" and w.words == ["a", "cat", "and", "a", "dog"] and w.image == image
    with pytest.raises(traitlets.TraitError, match="each concept must be a word or words"):
        w.concepts = ["cat", "?"]
    given = DaamWidget(pipe, "a cat and a dog", show=False, concepts=["dog"], **call)
    assert given.map_kind == "concepts" and given.words == ["dog"] and given.image == image


def test_concept_maps_where_the_family_has_none_say_so(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=STEPS, seed=1, show=False)
    assert not w.concepts_available
    w.concepts = ["dog"]
    assert w.status == "error" and "joint double-stream blocks" in w.error and w.map_kind == "daam"
    assert w.concepts == [] and w.generate() is not None, "the refused concepts do not stay"
    w.map_kind = "concepts"
    assert w.map_kind == "daam" and "type them in the concepts box" in w.error


def test_one_layer_shows_that_layers_maps_alone(sd1):
    w = DaamWidget(sd1, PROMPT, num_inference_steps=STEPS, seed=1, show=False)
    assert w.layer == "all" and w.layer_names == list(w.trace.layer_names)
    focus = np.frombuffer(w.layer_focus, "<f4").reshape(len(w.layer_names), len(w.words))
    np.testing.assert_array_equal(focus, w.trace.layer_focus(0, prompt=PROMPT).numpy())
    last = w.layer_names[-1]
    w.layer = last
    expected = w.trace.heat_maps(0, prompt=PROMPT, layers=[last])
    np.testing.assert_allclose(w.heat_maps["dog"], expected["dog"])
    assert not np.allclose(expected["dog"], w.trace.heat_maps(0, prompt=PROMPT)["dog"])
    assert w.num_steps == 0, "the step record sums every layer: no step view of one layer"
    w.layer = "all"
    assert w.num_steps == STEPS
    with pytest.raises(traitlets.TraitError, match="layer must be 'all' or one of the traced layers"):
        w.layer = "up_blocks.9"
    given = DaamWidget(sd1, PROMPT, num_inference_steps=STEPS, seed=1, show=False, layer=last)
    np.testing.assert_allclose(given.heat_maps["dog"], expected["dog"])
