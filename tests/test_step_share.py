"""What tracing adds to a denoising step of the SD-2.1-, SDXL- and Flux.1-dev-shaped denoisers, as a share
of what an untraced step dispatches: at most 3%, for the plain and the widget's trace, with 1 and 4 images
per prompt. Counted (deterministic) on ``bench/pipelines.py``'s models with every width divided by 8: the
same layers, heads and resolutions dispatch the same operations as the full-size models, whose counts
``bench/step_share.py`` prints (and the slow test below checks)."""

import pytest

from bench.step_share import shares

SHARE = 0.03


def _check(name, narrow):
    for row in shares(name, narrow=narrow):
        print(name, row)
        for kind in ("trace", "widget"):
            assert row[kind] <= SHARE * row["untraced"], (kind, row)


@pytest.mark.parametrize("name", ["sd21", "sdxl", "flux-3"])
def test_tracing_adds_at_most_3_percent_to_a_step(name):
    _check(name, narrow=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sd21", "sdxl", "flux-3"])
def test_tracing_adds_at_most_3_percent_to_a_step_of_the_full_size_models(name):
    _check(name, narrow=1)
