"""The compact file: each resolution's sums at its own grid in float16 rebuild the trace's maps within
float16's rounding, for UNets, transformers and a pipeline that resizes its image; former files load."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

import daam_widget
from daam_widget import HeatMaps, StepMaps, testing
from tests.conftest import seeded

PROMPT = "a red dog, on a hat"


def traced(pipe, **call):
    with daam_widget.trace(pipe, per_step=True) as tc:
        pipe(PROMPT, generator=seeded(), num_inference_steps=2, **call)
    return tc.heat_maps(0, prompt=PROMPT), tc.step_maps(0, prompt=PROMPT)


@pytest.fixture(scope="module")
def pixart_binned():
    pipe = testing.pixart_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return traced(pipe, height=32, width=48, max_sequence_length=24, clean_caption=False)


@pytest.fixture(scope="module")
def unet(sd1):
    return traced(sd1)


def worst_error_over_peak(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().flatten(1).amax(1) / b.flatten(1).amax(1)).max())


@pytest.mark.parametrize("case", ["unet", "pixart_binned"])
def test_a_saved_file_rebuilds_the_traces_maps_within_float16s_rounding(case, request, tmp_path):
    maps, _ = request.getfixturevalue(case)
    assert torch.equal(maps.grids.maps(), maps.maps), "the grids are what the maps are made of, exactly"
    maps.save(tmp_path / "m.safetensors")
    loaded = HeatMaps.load(tmp_path / "m.safetensors")
    # float16 keeps 11 significant bits: each grid value within 2**-12 of its map's peak, and Eq. 6 adds a
    # few resolutions' bicubic upsamplings of them
    assert worst_error_over_peak(loaded.maps, maps.maps) < 2e-3
    assert loaded.shape == maps.shape and loaded.words == maps.words
    assert loaded.settings == json.loads(json.dumps(maps.settings)), "settings are JSON"
    assert np.array_equal(loaded.image, maps.image), "the image is kept losslessly (PNG)"
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        grids = {k: f.get_tensor(k) for k in f.keys() if k.startswith("grid/")}
        assert "maps" not in f.keys() and "image" not in f.keys()
    assert {g.dtype for g in grids.values()} == {np.dtype("float16")}
    assert sorted(tuple(g.shape[1:]) for g in grids.values()) == sorted(maps.grids.grids)


def test_the_pixart_maps_are_resized_back_as_the_image_was(pixart_binned):
    maps, _ = pixart_binned
    assert maps.grids.output_size == (32, 48) and maps.grids.size != (32, 48), "binned to a trained size"


def test_the_file_is_the_size_of_the_grids_not_of_the_image(unet, tmp_path):
    maps, _ = unet
    maps.save(tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        held = sum(f.get_tensor(k).nbytes for k in f.keys() if k.startswith(("grid/", "scale/")))
    cells = sum(h * w for h, w in maps.grids.grids)
    positions = len(maps.positions)
    assert held == positions * cells * 2 + positions * len(maps.grids.grids) * 4
    assert held * 5 < maps.maps.numel() * 4, "at 32 px, grids of 16, 8 and 4: six times smaller"


def test_step_maps_are_kept_in_float16_per_step_and_word(unet, tmp_path):
    _, steps = unet
    steps.save(tmp_path / "s.safetensors")
    loaded = StepMaps.load(tmp_path / "s.safetensors")
    assert loaded.grids == steps.grids and loaded.words == steps.words
    for grid in steps.grids:
        a, b = loaded.maps[grid], steps.maps[grid].float()
        peak = b.flatten(2).amax(2)[..., None, None]
        assert float(((a - b).abs() / peak.clamp_min(1e-30)).max()) <= 2**-11


def test_files_of_the_former_format_still_load(unet, tmp_path):
    maps, steps = unet
    metadata = {
        "format": "daam-widget/1",
        "layout": json.dumps(maps.layout.to_json()),
        "settings": json.dumps(maps.settings, default=str),
    }
    tensors = {
        "maps": maps.maps.numpy(),
        "positions": np.asarray(maps.positions, np.int64),
        "image": np.ascontiguousarray(maps.image),
    }
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=metadata)
    old = HeatMaps.load(tmp_path / "old.safetensors")
    assert torch.equal(old.maps, maps.maps) and np.array_equal(old.image, maps.image) and old.grids is None
    save_file(
        {f"grid/{h}x{w}": m.float().numpy() for (h, w), m in steps.maps.items()},
        str(tmp_path / "old-steps.safetensors"),
        metadata={
            "format": "daam-widget-steps/1",
            "layout": metadata["layout"],
            "image_size": json.dumps(list(steps.image_size)),
        },
    )
    old_steps = StepMaps.load(tmp_path / "old-steps.safetensors")
    assert all(torch.equal(old_steps.maps[g], steps.maps[g].float()) for g in steps.grids)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"format": "daam-widget/2", "settings": "{}", "size": "[8, 8]"}, "'layout' is missing or not JSON"),
        ({"format": "daam-widget/2", "layout": "{", "settings": "{}"}, "'layout' is missing or not JSON"),
        ({"format": "daam-widget/2", "layout": "[" * 5000 + "]" * 5000}, "'layout' is missing or not JSON"),
    ],
)
def test_a_file_with_damaged_metadata_says_which_entry(unet, tmp_path, metadata, message):
    maps, _ = unet
    path = tmp_path / "bad.safetensors"
    save_file(
        {"maps": maps.maps.numpy(), "positions": np.asarray(maps.positions, np.int64)}, str(path), metadata
    )
    with pytest.raises(ValueError, match=message):
        HeatMaps.load(path)


def test_a_file_that_is_not_safetensors_says_so(tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        HeatMaps.load(path)
