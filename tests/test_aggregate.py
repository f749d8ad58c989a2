"""Eq. 6's aggregation: linearity of bicubic upsampling, clamping once, and the UNet's grid sizes."""

import pytest
import torch
import torch.nn.functional as F

from daam_widget._aggregate import latent_grid, upsample_once


def test_sum_of_upsampled_equals_upsampled_sum():
    torch.manual_seed(0)
    maps = [torch.rand(3, 8, 12).pow(8) for _ in range(5)] + [torch.rand(3, 4, 6).pow(8) for _ in range(3)]
    one_by_one = sum(F.interpolate(m[None].double(), size=(40, 60), mode="bicubic")[0] for m in maps)
    fast = upsample_once(maps, (40, 60))
    error = float((fast.double() - one_by_one.clamp(min=0)).abs().max() / one_by_one.abs().max())
    assert error < 1e-5


def test_undershoot_is_clamped_once_after_the_sum():
    peak = torch.zeros(1, 4, 4)
    peak[0, 1, 1] = 1.0
    up = F.interpolate(peak[None], size=(16, 16), mode="bicubic")[0]
    assert up.min() < 0  # bicubic undershoots beside a peak
    both = upsample_once([peak, peak], (16, 16))
    assert both.min() == 0
    torch.testing.assert_close(both, (2 * up).clamp(min=0))


@pytest.mark.parametrize(
    ("latent", "queries", "grid"),
    [
        ((64, 64), 64 * 64, (64, 64)),
        ((64, 64), 8 * 8, (8, 8)),
        ((20, 28), 5 * 7, (5, 7)),
        ((75, 40), 19 * 10, (19, 10)),
    ],
)
def test_latent_grid_rounds_up_like_a_stride_two_convolution(latent, queries, grid):
    assert latent_grid(queries, latent) == grid
    conv = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)
    x = torch.zeros(1, 1, *latent)
    while x.shape[-2] * x.shape[-1] > queries:
        x = conv(x)
    assert tuple(x.shape[-2:]) == grid


def test_latent_grid_refuses_a_size_that_is_no_downsampling():
    with pytest.raises(ValueError, match="no downsampling of the 64x64 latent"):
        latent_grid(1000, (64, 64))


def test_nothing_selected_is_an_error():
    with pytest.raises(ValueError, match="no attention maps were recorded"):
        upsample_once([], (8, 8))
