"""The paper's analyses on hand-made maps whose answers are known."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from daam_widget import HeatMaps, testing
from daam_widget._words import layout_from_text
from daam_widget.analysis import (
    compare_pairs,
    dependency_pairs,
    mask_area,
    segmentation_miou,
    summarize_by_relation,
    tau_sweep,
)

PROMPT = "a red dog on a hat."


@pytest.fixture(scope="module")
def maps():
    """On a 4x4 image: 'dog' fills the left half, 'hat' the top-left quarter, 'red' ramps 1..4 by column."""
    layout = layout_from_text(PROMPT, testing.clip_tokenizer())
    data = torch.zeros(len(layout.used_positions), 4, 4)
    data[layout.find("dog").tokens[0], :, :2] = 1.0
    data[layout.find("hat").tokens[0], :2, :2] = 1.0
    data[layout.find("red").tokens[0]] = torch.arange(1.0, 5.0)
    return HeatMaps(data, layout.used_positions, layout)


def test_segmentation_miou_and_its_tau_sweep(maps):
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    assert segmentation_miou([(maps, "dog", left), (maps, "hat", left)]) == pytest.approx((1 + 0.5) / 2)
    # 'red' ramps 1..4: at tau 0.3 its mask is columns >= 1.2 (3 of 4); at 0.6, columns >= 2.4 (2 of 4)
    right = ~left
    sweep = tau_sweep([(maps, "red", right)], taus=(0.3, 0.6))
    assert sweep == {0.3: pytest.approx(2 / 3), 0.6: pytest.approx(1.0)}


def test_segmentation_needs_matching_shapes_and_samples(maps):
    with pytest.raises(ValueError, match="must match"):
        segmentation_miou([(maps, "dog", np.zeros((2, 2), bool))])
    with pytest.raises(ValueError, match="at least one"):
        tau_sweep([])


def test_mask_area_is_the_covered_fraction(maps):
    assert mask_area(maps, "dog") == 0.5
    assert mask_area(maps, "hat") == 0.25


def test_pair_measures_and_their_summary(maps):
    measures = compare_pairs(maps, [("dog", "hat", "pobj"), ("dog", "red", "amod")])
    hat = measures[0]
    assert (hat.head, hat.dependent, hat.relation) == ("dog", "hat", "pobj")
    assert hat.iou == pytest.approx(0.5)
    assert hat.head_in_dependent == pytest.approx(0.5) and hat.dependent_in_head == pytest.approx(1.0)
    summary = summarize_by_relation(measures)
    assert list(summary) == ["amod", "pobj"] and summary["pobj"]["pairs"] == 1


def test_dependency_pairs_follow_the_parser_by_character_offsets(maps):
    def token(i, idx, head, dep):
        return SimpleNamespace(i=i, idx=idx, dep_=dep, head=SimpleNamespace(i=head[0], idx=head[1]))

    # a(0) red(2) dog(6) on(10) a(13) hat(15) .(18), parsed as spaCy would
    parse = [
        token(0, 0, (2, 6), "det"),
        token(1, 2, (2, 6), "amod"),
        token(2, 6, (2, 6), "ROOT"),
        token(3, 10, (2, 6), "prep"),
        token(4, 13, (5, 15), "det"),
        token(5, 15, (3, 10), "pobj"),
        token(6, 18, (2, 6), "punct"),
    ]
    pairs = dependency_pairs(maps, lambda text: parse if text == PROMPT else [])
    assert pairs == [(2, 0, "det"), (2, 1, "amod"), (2, 3, "prep"), (5, 4, "det"), (3, 5, "pobj")]
