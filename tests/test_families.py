"""The 2025-26 families (Qwen-Image, Flux.2 [dev] and [klein], Chroma, Z-Image), traced where their
processors call attention, against the independent oracle (tests/slow_transformer_daam.py); and the one
list of families that the tiny pipelines, the call table and the docs' table must agree with."""

import re
from pathlib import Path

import numpy as np
import pytest

import daam_widget
from daam_widget import testing
from daam_widget._backbones import FAMILIES, backbone_for
from tests.conftest import seeded
from tests.slow_daam import record_slowly, slow_heat_maps
from tests.slow_transformer_daam import record_at_attention, slow_transformer_maps

PROMPT = "A red dog, on a hat"
WORDS = ("A", "red", "dog", "on", "a", "hat")
BATCH = ({}, 1, None)  # guidance in one batch [negative, positive]: the positive row is 1
SECOND_CALL = ({}, 0, lambda i, c: i % 2 == 0)  # the negative prompt in a second call after the positive
GUIDANCE = {  # what turns guidance on, and where the positive prediction is: (options, batch row, calls)
    "qwen_image": ({"true_cfg_scale": 2.0, "negative_prompt": "a blue cat"}, 0, lambda i, c: i % 2 == 0),
    "flux2": ({}, 0, None),
    "flux2_klein": ({"guidance_scale": 4.0}, 0, lambda i, c: i % 2 == 0),
    "chroma": ({"guidance_scale": 4.0}, 0, lambda i, c: i % 2 == 0),
    "z_image": ({"guidance_scale": 4.0}, 0, None),  # one batch, [positive, negative]
    "cogview3plus": BATCH,
    "auraflow": BATCH,
    "hunyuandit": BATCH,
    "hidream": BATCH,  # 32 x 48 comes out as 24 x 36: its image tokens padded, with zeroed keys
    "hunyuanimage": SECOND_CALL,
    "lumina2": SECOND_CALL,
    "cogview4": SECOND_CALL,
    "kandinsky5": SECOND_CALL,
    "kolors": BATCH,
    "ovis_image": SECOND_CALL,
    "krea2": SECOND_CALL,
    "nucleusmoe": SECOND_CALL,
    "ernie_image": BATCH,
    "prx": BATCH,
    "longcat_image": SECOND_CALL,
    "bria_fibo": BATCH,
}
NEW = list(GUIDANCE)
LOWER_CASED = {"prx"}  # the pipeline lower-cases the prompt: words read back from the ids are lower case


def _decoded_words(name):
    return tuple(w.lower() for w in WORDS) if name in LOWER_CASED else WORDS


@pytest.fixture(scope="module")
def pipes():
    return {}


@pytest.fixture(params=NEW)
def family(request, pipes):
    if request.param not in pipes:
        pipe = testing.PIPELINES[request.param]()
        pipe.set_progress_bar_config(disable=True)
        pipes[request.param] = pipe
    return request.param, pipes[request.param]


def _call(name, **overrides):
    call = dict(prompt=PROMPT, num_inference_steps=2, height=32, width=48, output_type="np")  # non-square
    call.update(testing.CALLS.get(name, {}))
    call.update(overrides)
    return call


def _run(pipe, call, **options):
    with daam_widget.trace(pipe, **options) as tc:
        out = pipe(generator=seeded(), **call)
    return tc, out


def _denoiser(pipe):
    return pipe.unet if hasattr(pipe, "unet") else pipe.transformer


def _oracle(pipe, call, row, size, mode="text", calls_filter=None):
    if hasattr(pipe, "unet"):  # cross-attention only: the two modes are one
        with record_slowly(pipe.unet) as store:
            pipe(generator=seeded(), **call)
        latent = tuple(side // pipe.vae_scale_factor for side in size)
        return slow_heat_maps(store, row, latent, size)
    with record_at_attention(pipe.transformer) as calls:
        pipe(generator=seeded(), **call)
    return slow_transformer_maps(calls, row, size, mode=mode, calls_filter=calls_filter)


def _images(out):
    """The images of a pipeline's output (Kandinsky 5 calls them ``image``)."""
    return out.images if hasattr(out, "images") else out.image


def _max_relative_error(fast, slow):
    return float((fast.double() - slow).abs().max() / slow.abs().max())


@pytest.mark.parametrize("mode", ["text", "all"])
def test_maps_equal_the_oracle_with_guidance_in_both_softmax_modes(family, mode):
    name, pipe = family
    options, row, positive_calls = GUIDANCE[name]
    call = _call(name, **options)
    tc, out = _run(pipe, call, softmax_over=mode)
    maps = tc.heat_maps(prompt=PROMPT)
    slow = _oracle(pipe, call, row, maps.shape, mode, positive_calls)
    error = _max_relative_error(maps.maps, slow[list(maps.positions)])
    print(f"{name} softmax_over={mode}: max relative error {error:.2e}")
    assert error < 1e-5
    assert maps.words == WORDS and maps.shape == _images(out)[0].shape[:2]
    assert maps.settings["num_steps"] == 2 and tc.num_images == 1


def test_words_are_found_through_the_chat_template_without_the_prompt(family):
    name, pipe = family
    tc, _ = _run(pipe, _call(name))
    decoded = tc.heat_maps()
    assert decoded.words == _decoded_words(name)  # byte-level BPE keeps the case
    given = tc.heat_maps(prompt=PROMPT)
    assert [s.tokens for s in decoded.spans] == [s.tokens for s in given.spans]
    with pytest.raises(ValueError, match="is not the text the pipeline encoded"):
        tc.heat_maps(prompt="a blue cat")


def test_traced_image_is_bit_identical_and_processors_restored(family):
    name, pipe = family
    modules = {n: m for n, m in _denoiser(pipe).named_modules() if hasattr(m, "processor")}
    before = {n: m.processor for n, m in modules.items()}
    call = _call(name, **GUIDANCE[name][0])
    plain = _images(pipe(generator=seeded(), **call))
    _, traced = _run(pipe, call)
    assert np.array_equal(plain, _images(traced))
    assert all(modules[n].processor is before[n] for n in modules)


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_processors_and_hooks_restored_when_generation_is_interrupted(family, exception):
    name, pipe = family
    modules = {n: m for n, m in _denoiser(pipe).named_modules() if hasattr(m, "processor")}
    before = {n: m.processor for n, m in modules.items()}
    traced = daam_widget.trace(pipe)
    last = traced._modules[traced.layer_names[-1]]

    def interrupt(module, args, kwargs):
        raise exception("stop")

    handle = last.register_forward_pre_hook(interrupt, with_kwargs=True)
    try:
        with pytest.raises(exception), traced:
            pipe(**_call(name))
    finally:
        handle.remove()
    assert all(modules[n].processor is before[n] for n in modules)
    assert not _denoiser(pipe)._forward_pre_hooks
    assert not pipe.text_encoder._forward_hooks and not pipe.vae.decoder._forward_hooks


@pytest.mark.parametrize("name", [name for name in NEW if name != "flux2"])
def test_the_negative_prompt_is_counted_once_and_kept_apart(pipes, name):
    pipe = pipes.setdefault(name, testing.PIPELINES[name]())
    options, _, positive_calls = GUIDANCE[name]
    call = _call(name, **options)
    tc, _ = _run(pipe, call, keep_negative=True)
    maps, negative = tc.heat_maps(), tc.heat_maps(negative=True)
    assert maps.settings["num_steps"] == 2 and maps.words == _decoded_words(name)
    expected = "a blue cat".split() if "negative_prompt" in options else []
    assert list(negative.words) == expected
    if positive_calls is None:  # one guidance batch: the negative row is the other one
        slow_negative = _oracle(pipe, call, 1 - GUIDANCE[name][1], negative.shape)
    else:
        slow_negative = _oracle(
            pipe, call, 0, negative.shape, calls_filter=lambda i, c: not positive_calls(i, c)
        )
    assert _max_relative_error(negative.maps, slow_negative[list(negative.positions)]) < 1e-5


def test_qwen_image_batches_prompts_of_different_lengths_under_a_key_mask(pipes):
    pipe = pipes.setdefault("qwen_image", testing.PIPELINES["qwen_image"]())
    prompts = ["a red dog", "a blue cat on a big hat"]
    call = _call("qwen_image", prompt=prompts)
    tc, _ = _run(pipe, call)
    for image, prompt in enumerate(prompts):
        maps = tc.heat_maps(image)
        assert maps.words == tuple(prompt.split())
        slow = _oracle(pipe, call, image, maps.shape)
        assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5


def test_z_image_guidance_that_stops_early_is_followed(pipes):
    pipe = pipes.setdefault("z_image", testing.PIPELINES["z_image"]())
    call = _call("z_image", guidance_scale=4.0, cfg_truncation=0.2, num_inference_steps=3)
    tc, _ = _run(pipe, call)
    maps = tc.heat_maps()
    assert maps.settings["num_steps"] == 3
    slow = _oracle(pipe, call, 0, maps.shape)
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5


def test_a_backend_that_hides_the_attention_call_is_refused_with_what_to_do(pipes, monkeypatch):
    pipe = pipes.setdefault("qwen_image", testing.PIPELINES["qwen_image"]())
    monkeypatch.setattr("daam_widget._capture._attention", object())
    with pytest.raises(RuntimeError, match=r"set_attention_backend\('native'\)"), daam_widget.trace(pipe):
        pipe(generator=seeded(), **_call("qwen_image"))


def test_the_widget_shows_every_new_family(family):
    from daam_widget import DaamWidget

    name, pipe = family
    call = _call(name)
    del call["prompt"], call["output_type"]
    widget = DaamWidget(pipe, PROMPT, **call)
    assert widget.status == "ready", widget.error
    assert widget.words == list(WORDS)


# -- the lists agree ------------------------------------------------------------------------------


def test_every_family_has_a_tiny_pipeline_and_every_tiny_pipeline_a_family():
    families = {}
    for name, build in {**testing.PIPELINES, **testing.VIDEO_PIPELINES}.items():
        families.setdefault(type(backbone_for(build())), []).append(name)
    assert set(families) == set(FAMILIES), "a family without a tiny pipeline in daam_widget.testing"
    assert set(testing.CALLS) <= set(testing.PIPELINES)
    assert set(testing.VIDEO_CALLS) == set(testing.VIDEO_PIPELINES)
    assert all(family.video for family in families if set(families[family]) <= set(testing.VIDEO_PIPELINES))


def test_the_docs_table_names_every_supported_pipeline_and_no_other():
    table = Path(__file__).parent.parent / "docs" / "pipelines.md"
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")]
    named = {name for row in rows for name in re.findall(r"`(\w+Pipeline)`", row)}
    supported = {p for family in FAMILIES for p in family.pipelines}
    assert named == supported


def test_glm_image_is_refused_with_why_it_has_no_word_maps():
    glm_image = type("GlmImagePipeline", (), {})()
    with pytest.raises(
        TypeError, match="GLM-Image cannot have prompt-word maps: its DiT's text keys are ByT5"
    ):
        daam_widget.trace(glm_image)


def test_z_image_turbo_without_guidance_traces_its_single_row(pipes):
    pipe = pipes.setdefault("z_image", testing.PIPELINES["z_image"]())
    call = _call("z_image", guidance_scale=0.0)  # Z-Image-Turbo's setting
    tc, _ = _run(pipe, call)
    maps = tc.heat_maps()
    assert maps.words == WORDS and maps.settings["num_steps"] == 2
    slow = _oracle(pipe, call, 0, maps.shape)
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5


def test_every_tiny_pipeline_is_tested_against_the_oracle():
    from tests.test_transformer_pipelines import FAMILIES as EARLIER_TRANSFORMERS

    unets = {"sd2", "sdxl"}  # tests/test_trace.py, against tests/slow_daam.py
    tested = set(GUIDANCE) | unets | {name.removesuffix("_sigma") for name in EARLIER_TRANSFORMERS}
    assert set(testing.PIPELINES) <= tested


@pytest.mark.parametrize("name", ["sana", "lumina2"])
def test_a_negative_prompt_encoded_without_the_instruction_has_its_words(pipes, name):
    """Sana puts its instruction, and Lumina 2 its system prompt, before the prompt but not before the
    negative prompt."""
    pipe = pipes.setdefault(name, testing.PIPELINES[name]())
    pipe.set_progress_bar_config(disable=True)
    call = _call(name, negative_prompt="a blue cat", guidance_scale=4.0)
    if name == "sana":
        call.update(height=64, width=96, use_resolution_binning=False)
    tc, _ = _run(pipe, call, keep_negative=True)
    assert tuple(w.lower() for w in tc.heat_maps().words) == tuple(w.lower() for w in WORDS)
    assert tc.heat_maps(negative=True).words == ("a", "blue", "cat")
    assert tc.heat_maps(negative=True, prompt="a blue cat").words == ("a", "blue", "cat")


@pytest.mark.parametrize(
    ("name", "streams"), [("hidream", ("t5", "llama", "llama_layer")), ("hunyuandit", ("bert", "t5"))]
)
def test_a_word_with_keys_in_several_encoders_sums_them_and_a_stream_can_be_picked(pipes, name, streams):
    pipe = pipes.setdefault(name, testing.PIPELINES[name]())
    call = _call(name, **GUIDANCE[name][0])
    tc, _ = _run(pipe, call)
    both = tc.heat_maps(prompt=PROMPT)
    assert tuple(s.name for s in both.layout.streams) == streams
    parts = [tc.heat_maps(prompt=PROMPT, stream=s) for s in streams]
    assert [len(p.layout.find("dog").tokens) for p in parts] == [1] * len(streams)
    assert both.layout.find("dog").tokens == tuple(t for p in parts for t in p.layout.find("dog").tokens)
    np.testing.assert_allclose(both["dog"], sum(p["dog"] for p in parts), rtol=1e-5, atol=1e-7)
    slow = _oracle(pipe, call, GUIDANCE[name][1], both.shape)
    for part in parts:
        (token,) = part.layout.find("dog").tokens
        assert _max_relative_error(part.tensor("dog"), slow[token]) < 1e-5
