"""The toy model's grounding loss (daam_widget/toy/_grounding.py), checked against known answers."""

import math

import numpy as np
import pytest
import torch

from daam_widget.toy import SHAPES, ToyObject, _model
from daam_widget.toy._grounding import grounding_loss, noun_slots, recorded_attention, shape_coverage


def test_coverage_is_the_share_of_each_cell_inside_the_object():
    # A square of half-extent 10 / 0.85 covers x, y in [22, 42): cells 5..10 of the 16x16 grid (4 px each)
    # fully, nothing else, since 22 and 42 are not multiples of 4: cells 5 and 10 are half covered.
    square = ToyObject("square", "red", "small", 32.0, 32.0, 10 / 0.85)
    coverage = shape_coverage([square])
    expected = np.zeros((16, 16))
    per_axis = np.array([0, 0, 0, 0, 0, 0.5, 1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0])
    expected[:] = np.outer(per_axis, per_axis)
    np.testing.assert_allclose(coverage[SHAPES.index("square")], expected)
    others = [i for i, shape in enumerate(SHAPES) if shape != "square"]
    assert not coverage[others].any()


def test_coverage_adds_up_to_the_mask_area():
    star = ToyObject("star", "blue", "big", 20.3, 41.7, 15.2)
    coverage = shape_coverage([star])[SHAPES.index("star")]
    assert coverage.sum() * 16 == pytest.approx(star.mask().sum())


def test_noun_slots_mark_each_noun_token_with_its_shape():
    tok = _model.tokenizer()
    shape_ids = tok.convert_tokens_to_ids([f"{s}</w>" for s in SHAPES])
    ids = tok(["a red star above a big blue circle", ""], padding="max_length", return_tensors="pt").input_ids
    slots = noun_slots(ids, shape_ids)
    # Token 0 is the start token: "star" is token 3, "circle" token 8.
    assert slots[0, 3] == SHAPES.index("star") and slots[0, 8] == SHAPES.index("circle")
    assert (slots[0] >= 0).sum() == 2 and (slots[1] < 0).all()


def coverage_batch(cells):
    """A ``(1, len(SHAPES), 16, 16)`` coverage where a circle covers ``cells`` (a list of (row, col))."""
    coverage = torch.zeros(1, len(SHAPES), 16, 16)
    for row, col in cells:
        coverage[0, SHAPES.index("circle"), row, col] = 1.0
    return coverage


CIRCLE_AT_1 = torch.tensor([[-1, SHAPES.index("circle"), -1]])


def test_attention_shaped_like_the_object_costs_nothing_at_any_scale():
    coverage = coverage_batch([(3, 4), (3, 5)])
    probs = torch.full((1, 256, 3), 0.01)
    # 30% of these pixels' attention goes to the noun: the loss asks for the shape, not the amount.
    probs[0, 3 * 16 + 4, 1] = probs[0, 3 * 16 + 5, 1] = 0.3
    probs[0, :, 1][probs[0, :, 1] == 0.01] = 0.0
    loss = grounding_loss({"layer": probs}, CIRCLE_AT_1, coverage, (16, 16))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_uniform_attention_on_an_object_of_one_cell_costs_log_of_the_cells():
    coverage = coverage_batch([(0, 0)])
    uniform_16 = torch.full((1, 256, 3), 1 / 3)
    uniform_8 = torch.full((1, 64, 3), 1 / 3)
    # At 8x8 the object's cell (0, 0) covers a quarter of a coarse cell: still all of the target.
    loss = grounding_loss({"fine": uniform_16, "coarse": uniform_8}, CIRCLE_AT_1, coverage, (16, 16))
    assert loss.item() == pytest.approx((math.log(256) + math.log(64)) / 2, rel=1e-5)


def test_a_batch_without_nouns_gives_zero():
    no_nouns = torch.full((1, 3), -1)
    loss = grounding_loss({"layer": torch.rand(1, 256, 3)}, no_nouns, coverage_batch([]), (16, 16))
    assert loss.item() == 0.0


def test_recorded_attention_is_each_layers_softmax_with_gradients_and_restores_the_processors():
    unet = _model.unet()
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    context = torch.randn(2, 7, 64)
    with recorded_attention(unet) as probabilities:
        unet(torch.randn(2, 4, 16, 16), 10, encoder_hidden_states=context)
    assert {type(p) for p in unet.attn_processors.values()} == set(before.values())
    assert len(probabilities) == 6
    for probs in probabilities.values():
        assert probs.shape[0] == 2 and probs.shape[1] in (256, 64) and probs.shape[2] == 7
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
        assert probs.requires_grad
