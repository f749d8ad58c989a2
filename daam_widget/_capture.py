"""Recording cross-attention through diffusers' attention-processor seam.

Each cross-attention layer (an ``Attention`` module with ``is_cross_attention``) gets a recorder that
computes the attention probabilities softmax(QK^T / sqrt(d)) of the rows it is asked for, hands them to a
callback, and then calls the layer's original processor unchanged, so the generated image is bit-identical
to an untraced run. ``recording`` installs recorders and puts the original processor objects back on every
exit path.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

AttentionCallback = Callable[[str, Any, torch.Tensor, torch.Tensor, "torch.Tensor | None"], None]
"""``(layer_name, attn, hidden_states, encoder_hidden_states, attention_mask)``, before the layer runs."""

_install_lock = threading.Lock()


class CrossAttentionRecorder:
    """An attention processor that reports its inputs to ``callback``, then runs ``original``."""

    def __init__(self, original: Any, layer_name: str, callback: AttentionCallback) -> None:
        self.original = original
        self.layer_name = layer_name
        self.callback = callback

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None:
            self.callback(self.layer_name, attn, hidden_states, encoder_hidden_states, attention_mask)
        return self.original(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            **kwargs,
        )


@functools.cache
def _recorder_type(processor_type: type) -> type[CrossAttentionRecorder]:
    """A recorder class whose ``__call__`` declares what ``processor_type.__call__`` declares.

    ``Attention.forward`` passes a processor only the keyword arguments its signature names, so a recorder
    with a generic signature would silently drop, say, an IP-Adapter's ``ip_adapter_masks``.
    """

    def __call__(self: CrossAttentionRecorder, *args: Any, **kwargs: Any) -> torch.Tensor:
        return CrossAttentionRecorder.__call__(self, *args, **kwargs)

    __call__.__signature__ = inspect.signature(processor_type.__call__)  # type: ignore[attr-defined]
    return type(f"Recording{processor_type.__name__}", (CrossAttentionRecorder,), {"__call__": __call__})


def cross_attention_layers(unet: torch.nn.Module) -> dict[str, Any]:
    """The cross-attention ``Attention`` modules of ``unet`` by module name (``...attn2``), in model order."""
    return {
        name: module
        for name, module in unet.named_modules()
        if getattr(module, "is_cross_attention", False) and hasattr(module, "processor")
    }


@contextmanager
def recording(
    unet: Any, callback: AttentionCallback, layer_names: Sequence[str]
) -> Iterator[dict[str, CrossAttentionRecorder]]:
    """Install recorders on the named cross-attention layers of ``unet`` for the ``with`` block.

    Raises RuntimeError if ``unet`` is already being recorded: two traces on one UNet would each see the
    other's recorder as "the original" and could restore the wrong processors.
    """
    with _install_lock:
        originals = dict(unet.attn_processors)
        if any(isinstance(p, CrossAttentionRecorder) for p in originals.values()):
            raise RuntimeError(
                "this pipeline is already being traced; traces cannot nest or run concurrently on one "
                "pipeline: finish the other `with daam_widget.trace(pipe)` block first"
            )
        recorders = {}
        replaced = dict(originals)
        for name in layer_names:
            key = f"{name}.processor"
            original = originals[key]
            recorders[name] = _recorder_type(type(original))(original, name, callback)  # type: ignore[arg-type]
            replaced[key] = recorders[name]
        try:
            # set_attn_processor consumes the dict it is given: hand it copies.
            unet.set_attn_processor(dict(replaced))
        except BaseException:
            unet.set_attn_processor(dict(originals))
            raise
    try:
        yield recorders
    finally:
        unet.set_attn_processor(dict(originals))


def attention_probabilities(
    attn: Any,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    heads: Sequence[int] | None,
) -> torch.Tensor:
    """Cross-attention probabilities summed over heads: ``(batch, queries, keys)``, float32.

    Follows the steps every diffusers processor takes before the softmax (spatial and group norm, the
    cross-attention norm, q/k norms, the additive mask), so the probabilities are the ones the original
    processor computes. ``heads`` picks heads by index; ``None`` sums all.
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
    head_dim = key.shape[-1] // attn.heads
    query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    if getattr(attn, "norm_q", None) is not None:
        query = attn.norm_q(query)
    if getattr(attn, "norm_k", None) is not None:
        key = attn.norm_k(key)
    if heads is not None:
        index = torch.as_tensor(heads, device=query.device)
        query, key = query.index_select(1, index), key.index_select(1, index)
    scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * attn.scale
    if attention_mask is not None:
        mask = attn.prepare_attention_mask(attention_mask, key.shape[2], batch)
        mask = mask.view(batch, attn.heads, -1, mask.shape[-1])
        if heads is not None:
            mask = mask.index_select(1, index)
        scores = scores + mask.float()
    return scores.softmax(dim=-1).sum(dim=1)
