"""The grounding loss of the toy model's training: each noun's cross-attention should fall on its object.

The toy exists to show and test DAAM, so its training says where each noun is, as TokenCompose (Wang et
al., 2024) does for Stable Diffusion: without it a 1.3 M-parameter UNet trained for 90 CPU minutes
localises nouns only in its coarsest layers (docs/toy-history.md). For every noun token of a caption and
every cross-attention layer, the loss is the KL divergence from the object's cell coverage (how much of
each cell the object covers) to the token's attention map, both normalised over the layer's cells
(``grounding_loss`` says why a divergence). Only nouns are taught; colour and size words are left to
learn what they learn, so the paper's adjective analyses on the toy still measure attention that was not
trained for them.

The loss reads the probabilities through the tracer's own seam (``_capture``): a recorder on each
cross-attention layer computes softmax(QK^T / sqrt(d)) with gradients, and the layer then runs unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._aggregate import latent_grid
from .._capture import recording
from .._cross_attention import attention_probabilities, cross_attention_layers
from ._world import SHAPES, SIZE, ToyObject

COVERAGE_GRID = 16
"""The finest cross-attention grid of the toy UNet (16x16 latents); coarser grids pool from it."""


def shape_coverage(objects: Sequence[ToyObject], grid: int = COVERAGE_GRID) -> np.ndarray:
    """``(len(SHAPES), grid, grid)`` float32: the share of each cell covered by the object of each shape.

    Shapes are distinct within a scene, so a shape names at most one object; absent shapes cover nothing.
    """
    coverage = np.zeros((len(SHAPES), grid, grid), np.float32)
    cell = SIZE // grid
    for obj in objects:
        coverage[SHAPES.index(obj.shape)] = obj.mask().reshape(grid, cell, grid, cell).mean(axis=(1, 3))
    return coverage


def noun_slots(ids: torch.Tensor, shape_token_ids: Sequence[int]) -> torch.Tensor:
    """``(batch, tokens)`` long: the ``SHAPES`` index of the noun at each token of ``ids``, -1 elsewhere."""
    slots = torch.full_like(ids, -1)
    for index, token_id in enumerate(shape_token_ids):
        slots[ids == token_id] = index
    return slots


def grounding_loss(
    probabilities: Mapping[str, torch.Tensor],
    slots: torch.Tensor,
    coverage: torch.Tensor,
    latent_size: tuple[int, int],
) -> torch.Tensor:
    """Mean over layers and noun tokens of KL(object's coverage || noun's attention), each summing to 1.

    Both sides are spatial distributions, so the loss asks for the map's shape only: as much attention on
    every cell as the object covers, none elsewhere. That is what Eq. 7 rewards (a mask relative to the
    map's maximum); a loss on the share of attention inside the object alone is met by peaks on a few
    cells, whose masks at tau = 0.4 are smaller than the object. How much of a pixel's attention goes to
    the noun rather than to its adjectives stays free.

    ``probabilities``: per layer ``(batch, queries, tokens)``; ``slots`` from ``noun_slots``; ``coverage``
    ``(batch, len(SHAPES), 16, 16)`` from ``shape_coverage``. A batch without nouns gives zero.
    """
    rows, tokens = (slots >= 0).nonzero(as_tuple=True)
    if rows.numel() == 0:
        return coverage.new_zeros(())
    targets = coverage[rows, slots[rows, tokens]]
    losses = []
    for probs in probabilities.values():
        h, w = latent_grid(probs.shape[1], latent_size)
        target = F.adaptive_avg_pool2d(targets, (h, w)).flatten(1)
        target = target / target.sum(1, keepdim=True)
        attention = probs[rows, :, tokens]
        attention = attention / attention.sum(1, keepdim=True).clamp_min(1e-12)
        kl = torch.special.xlogy(target, target) - target * attention.clamp_min(1e-12).log()
        losses.append(kl.sum(1).mean())
    return torch.stack(losses).mean()


@contextmanager
def recorded_attention(unet: Any) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward of ``unet`` fills the yielded dict with each cross-attention layer's
    probabilities ``(batch, queries, tokens)`` (with gradients); the original processors come back after."""
    probabilities: dict[str, torch.Tensor] = {}

    def keep(name: str, attn: Any, arguments: dict[str, Any], seen: Any) -> None:
        probabilities[name] = attention_probabilities(
            attn,
            arguments["hidden_states"],
            arguments["encoder_hidden_states"],
            arguments.get("attention_mask"),
            heads=None,
        )

    with recording(cross_attention_layers(unet), keep, watch=False):
        yield probabilities
