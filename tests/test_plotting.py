"""Plots show the right data: the overlay pixels are the colour-mapped max-normalised map over the image."""

import matplotlib
import numpy as np
import pytest
import torch

from daam_widget import HeatMaps, testing
from daam_widget._words import layout_from_text
from daam_widget.plotting import overlay_image, plot_grid, plot_overlay

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def maps():
    layout = layout_from_text("a red dog", testing.clip_tokenizer())
    data = torch.zeros(len(layout.used_positions), 8, 8)
    data[3, 2:6, 2:6] = 5.0  # 'dog' is a centred square
    return HeatMaps(data, layout.used_positions, layout, image=np.zeros((8, 8, 3), np.uint8))


def test_overlay_image_blends_the_colour_map_by_alpha(maps):
    rgb = overlay_image(maps, "dog", alpha=1.0, cmap="gray")
    assert rgb[4, 4].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]
    half = overlay_image(maps, "dog", alpha=0.5, cmap="gray")
    assert half[4, 4].tolist() == [128, 128, 128]


def test_plot_overlay_draws_the_normalised_map_and_the_mask_outline(maps):
    ax = plot_overlay(maps, "dog", tau=0.4, colorbar=True)
    shown = ax.get_images()[-1].get_array()
    np.testing.assert_allclose(shown, maps.soft("dog", "max"))
    assert ax.get_title() == "dog (τ = 0.4)"
    assert ax.collections  # the contour of the mask


def test_plot_grid_has_the_image_and_one_panel_per_word(maps):
    fig = plot_grid(maps, columns=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["image", "a", "red", "dog"]
