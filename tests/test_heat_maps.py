"""HeatMaps, the metrics and the file format, on hand-made maps with known answers."""

import os

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import HeatMaps, testing
from daam_widget._words import layout_from_text


@pytest.fixture(scope="module")
def maps():
    """'a zebra on a hat': <start>, a, z e b r a (pieces), on, a, hat, <end> on a 4x6 image."""
    layout = layout_from_text("a zebra on a hat", testing.clip_tokenizer())
    positions = layout.used_positions
    data = torch.zeros(len(positions), 4, 6)
    for p in positions:
        data[p] = p  # every map is constant: its position
    data[layout.find("hat").tokens[0], :2, :3] = 100.0  # 'hat' peaks in the top-left quarter
    image = np.full((4, 6, 3), 7, np.uint8)
    return HeatMaps(data, positions, layout, image=image, settings={"seed": 3})


def test_a_words_map_is_the_sum_of_its_pieces(maps):
    zebra = maps.span("zebra").tokens
    assert len(zebra) == 5
    np.testing.assert_array_equal(maps["zebra"], np.full((4, 6), float(sum(zebra)), np.float32))
    assert np.asarray(maps["zebra"]).dtype == np.float32


def test_words_are_addressable_by_index_and_occurrence(maps):
    assert maps.words == ("a", "zebra", "on", "a", "hat")
    np.testing.assert_array_equal(maps[3], maps.word("a", 1))
    np.testing.assert_array_equal(maps[3], maps[("a", 1)])
    np.testing.assert_array_equal(maps[-1], maps["hat"])
    assert maps.word("a", 1)[0, 0] == maps.span(("a", 1)).tokens[0]
    with pytest.raises(IndexError, match="has 5 words"):
        maps[5]
    with pytest.raises(TypeError, match="a word key is"):
        maps[1.5]


def test_mask_is_eq7_threshold_of_the_max(maps):
    mask = maps.mask("hat", tau=0.4)
    expected = np.zeros((4, 6), bool)
    expected[:2, :3] = True
    np.testing.assert_array_equal(mask, expected)
    assert maps.mask("hat", tau=0.0).all()
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\]"):
        maps.mask("hat", tau=1.5)


def test_normalisation_choices(maps):
    assert maps.soft("hat", "max").max() == pytest.approx(1.0)
    assert maps.soft("hat", "sum").sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="normalize must be 'none', 'max' or 'sum'"):
        maps.soft("hat", "softmax")


def test_pair_measures_on_known_masks(maps):
    # 'hat' is the top-left 2x3 of a 4x6 image; 'on' is constant so its mask is everything
    assert maps.iou("hat", "on") == pytest.approx(6 / 24)
    assert maps.intersection_over_area("hat", "on", tau=0.4) == pytest.approx(1.0)
    assert maps.intersection_over_area("on", "hat", tau=0.4) == pytest.approx(6 / 24)


def test_soft_intersection_over_area_by_hand():
    a = np.array([[1.0, 0.5], [0.0, 0.0]])
    b = np.array([[0.2, 1.0], [1.0, 0.0]])
    # min(a, b) = [[.2, .5], [0, 0]]: .7 of a's area 1.5
    assert daam_widget.intersection_over_area(a, b) == pytest.approx(0.7 / 1.5)


def test_iou_by_hand_and_its_errors():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[0, 1, 1, 0]], bool)
    assert daam_widget.iou(a, b) == pytest.approx(1 / 3)
    assert daam_widget.iou(a & False, b & False) == 0.0
    assert daam_widget.mean_iou([(a, b), (a, a)]) == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(TypeError, match="threshold soft maps first"):
        daam_widget.iou(a.astype(float), b)


def test_save_and_load_round_trip_without_pickle(maps, tmp_path):
    path = tmp_path / "maps.safetensors"
    maps.save(path)
    assert b"pickle" not in path.read_bytes()[:200]
    loaded = HeatMaps.load(path)
    assert loaded.prompt == maps.prompt and loaded.spans == maps.spans and loaded.settings == maps.settings
    np.testing.assert_array_equal(loaded.maps.numpy(), maps.maps.numpy())
    np.testing.assert_array_equal(loaded.image, maps.image)
    np.testing.assert_array_equal(loaded["zebra"], maps["zebra"])


def test_the_file_is_plain_safetensors(maps, tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "maps.safetensors"
    maps.save(path)
    tensors = load_file(path)
    assert set(tensors) == {"maps", "positions", "image_png"}, "maps made by hand have no grids: kept whole"
    assert tensors["positions"].tolist() == list(maps.positions)


def test_loading_another_file_says_what_it_expects(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2, np.float32)}, str(path))
    with pytest.raises(ValueError, match="is not a daam-widget heat-map file"):
        HeatMaps.load(path)


def test_a_saved_file_appears_whole_with_ordinary_permissions(maps, tmp_path, monkeypatch):
    from daam_widget import _files

    target = tmp_path / "maps.safetensors"
    maps.save(target)
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == 0o666 & ~umask, "not safetensors' private 0600"
    before = target.read_bytes()
    save = _files.save_file

    def dies_half_way(tensors, path, metadata=None):
        save(tensors, path, metadata=metadata)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(_files, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        maps.save(target)
    assert target.read_bytes() == before, "the file under its name is the last whole one"


def test_a_map_with_no_attention_has_an_empty_mask_and_a_nan_map_none(tmp_path):
    layout = layout_from_text("a red dog", testing.clip_tokenizer())
    data = torch.rand(len(layout.used_positions), 4, 4)
    data[layout.find("red").tokens[0]] = 0
    data[layout.find("dog").tokens[0], 0, 0] = float("nan")
    maps = HeatMaps(data, layout.used_positions, layout)
    with pytest.warns(RuntimeWarning, match="the map of 'red' is zero everywhere"):
        assert not maps.mask("red").any(), "no attention: an empty mask, not Eq. 7's whole image"
    with pytest.raises(ValueError, match="the map of 'dog' holds NaN"):
        maps.mask("dog")


def test_renormalised_maps_share_each_pixel_among_the_content_words(maps):
    z, h = maps["zebra"], maps["hat"]  # z is constant; h is 100 in the top-left 2x3, its position elsewhere
    content = maps.renormalized()
    assert content.words == ("zebra", "hat")
    assert content.settings["renormalized_over"] == ["zebra", "hat"]
    assert content.settings["dropped"] == ["a", "on", "a"]  # stop words
    np.testing.assert_allclose(content["zebra"], z / (z + h), rtol=1e-6)
    np.testing.assert_allclose(content["hat"], h / (z + h), rtol=1e-6)
    np.testing.assert_allclose(content["zebra"] + content["hat"], 1.0, rtol=1e-6)
    chosen = maps.renormalized(["hat", ("a", 1)])
    a1 = maps.word("a", 1)
    assert chosen.words == ("a", "hat") and chosen.settings["dropped"] == ["a", "zebra", "on"]
    np.testing.assert_allclose(chosen["hat"], h / (h + a1), rtol=1e-6)
    with pytest.raises(ValueError, match="renormalise over at least one word"):
        maps.renormalized([])
    with pytest.raises(ValueError, match="'hat' is named twice"):
        maps.renormalized(["hat", "hat"])
