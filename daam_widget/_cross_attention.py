"""What diffusers' cross-attention modules compute, for the families whose text keys come from real
cross-attention (UNets, PixArt, Sana) and for the toy's grounding loss: where the modules are, and their
image-query x text-key probabilities computed again from a processor's arguments, for processors whose
own q and k cannot be seen (xFormers, a flash-attention package)."""

from __future__ import annotations

from typing import Any

import torch

from ._probabilities import AttentionInputs, text_probabilities

_ALL = slice(None)


def cross_attention_layers(model: torch.nn.Module) -> dict[str, Any]:
    """The cross-attention ``Attention`` modules of ``model`` by name (``...attn2``), in model order."""
    return {
        name: module
        for name, module in model.named_modules()
        if getattr(module, "is_cross_attention", False) and hasattr(module, "processor")
    }


def attention_probabilities(
    attn: Any,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    heads: list[int] | None,
    *,
    norm_before_heads: bool = False,
) -> torch.Tensor:
    """Cross-attention probabilities summed over heads: ``(batch, queries, keys)``, float32.

    Follows the steps diffusers' cross-attention processors take before the softmax (spatial and group
    norm, the cross-attention norm, q/k norms, the additive mask), so the probabilities are the ones the
    original processor computes. ``norm_before_heads``: the q/k norms act on the whole projection (Sana)
    rather than per head. ``heads`` picks heads by index; ``None`` sums all.
    """
    if attn.spatial_norm is not None:
        raise NotImplementedError("cross-attention with a spatial norm is not supported")
    batch = hidden_states.shape[0]
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.flatten(2).transpose(1, 2)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    if attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    query = attn.to_q(hidden_states)
    key = attn.to_k(encoder_hidden_states)
    norm_q, norm_k = getattr(attn, "norm_q", None), getattr(attn, "norm_k", None)
    if norm_before_heads:
        query = norm_q(query) if norm_q is not None else query
        key = norm_k(key) if norm_k is not None else key
    head_dim = key.shape[-1] // attn.heads
    query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    if not norm_before_heads:
        query = norm_q(query) if norm_q is not None else query
        key = norm_k(key) if norm_k is not None else key
    mask = None
    if attention_mask is not None:
        mask = attn.prepare_attention_mask(attention_mask, key.shape[2], batch)
        mask = mask.view(batch, attn.heads, -1, mask.shape[-1])
    return text_probabilities(AttentionInputs(query, key, mask, attn.scale), _ALL, _ALL, _ALL, heads, False)
