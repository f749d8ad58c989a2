"""attribute_image against the slow oracle run on the same noised latents."""

import numpy as np
import pytest
import torch

import daam_widget
from tests.slow_daam import record_slowly, slow_heat_maps


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(32, 48, 3), dtype=np.uint8)


def test_maps_equal_the_slow_computation_on_the_same_noised_latents(sd1, picture):
    maps = daam_widget.attribute_image(sd1, picture, "a red dog", timesteps=(200, 500), seed=3)
    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 127.5 - 1
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad(), record_slowly(sd1.unet) as store:
        latents = sd1.vae.encode(x).latent_dist.mean * sd1.vae.config.scaling_factor
        embeds = sd1.text_encoder(
            sd1.tokenizer("a red dog", padding="max_length", return_tensors="pt").input_ids
        )[0]
        for t in (200, 500):
            a = sd1.scheduler.alphas_cumprod[t]
            noisy = a.sqrt() * latents + (1 - a).sqrt() * torch.randn(latents.shape, generator=generator)
            sd1.unet(noisy, t, encoder_hidden_states=embeds)
    slow = slow_heat_maps(store, 0, (16, 24), (32, 48))
    error = float((maps.maps.double() - slow[list(maps.positions)]).abs().max() / slow.abs().max())
    assert error < 1e-5
    assert maps.words == ("a", "red", "dog")
    np.testing.assert_array_equal(maps.image, picture)


def test_sdxl_images_can_be_attributed(sdxl, picture):
    maps = daam_widget.attribute_image(sdxl, picture, "a red dog", timesteps=(300,))
    assert maps.shape == (32, 48) and np.isfinite(maps["dog"]).all()


def test_bad_images_and_timesteps_say_what_is_allowed(sd1, picture):
    with pytest.raises(ValueError, match="multiple of the VAE's factor 2"):
        daam_widget.attribute_image(sd1, picture[:31], "a dog")
    with pytest.raises(ValueError, match="RGB uint8"):
        daam_widget.attribute_image(sd1, picture.astype(float), "a dog")
    with pytest.raises(ValueError, match=r"timesteps must be whole numbers in 0\.\.999, not \[1000\]"):
        daam_widget.attribute_image(sd1, picture, "a dog", timesteps=(1000,))
    with pytest.raises(ValueError, match=r"timesteps must be whole numbers in 0\.\.999, not \[100.5\]"):
        daam_widget.attribute_image(sd1, picture, "a dog", timesteps=[100.5])
    with pytest.raises(ValueError, match="image size 0x0 must be a positive multiple"):
        daam_widget.attribute_image(sd1, picture[:0, :0], "a dog")
    with pytest.raises(ValueError, match=r"prompt must be the text whose words are attributed.*not None"):
        daam_widget.attribute_image(sd1, picture, None)
