"""Recording attention through diffusers' attention-processor seam.

Each traced attention module gets a recorder: a processor that reports the call's arguments to a callback
and then calls the module's original processor unchanged, so the generated image is bit-identical to an
untraced run. ``recording`` installs recorders module by module (``module.set_processor``, which every
diffusers attention class has, unlike ``set_attn_processor`` on newer transformers) and puts the original
processor objects back on every exit path.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

AttentionCallback = Callable[[str, Any, dict[str, Any]], None]
"""``(layer_name, attn, arguments)`` before the layer runs; ``arguments`` are the processor's arguments by
name (``hidden_states``, ``encoder_hidden_states``, ``attention_mask``, ``image_rotary_emb``, ...)."""

_install_lock = threading.Lock()


class AttentionRecorder:
    """An attention processor that reports its arguments to ``callback``, then runs ``original``."""

    _signature: inspect.Signature

    def __init__(self, original: Any, layer_name: str, callback: AttentionCallback) -> None:
        self.original = original
        self.layer_name = layer_name
        self.callback = callback

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = self._signature.bind_partial(attn, *args, **kwargs).arguments
        arguments.pop(next(iter(self._signature.parameters)))
        self.callback(self.layer_name, attn, arguments)
        return self.original(attn, *args, **kwargs)


@functools.cache
def _recorder_type(processor_type: type) -> type[AttentionRecorder]:
    """A recorder class whose ``__call__`` declares what ``processor_type.__call__`` declares.

    diffusers passes a processor only the keyword arguments its signature names, so a recorder with a
    generic signature would silently drop, say, Flux's ``image_rotary_emb`` or an IP-Adapter's masks.
    """
    signature = inspect.signature(processor_type.__call__)
    unbound = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __call__(self: AttentionRecorder, *args: Any, **kwargs: Any) -> Any:
        return AttentionRecorder.__call__(self, *args, **kwargs)

    __call__.__signature__ = signature  # type: ignore[attr-defined]
    return type(
        f"Recording{processor_type.__name__}",
        (AttentionRecorder,),
        {"__call__": __call__, "_signature": unbound},
    )


def cross_attention_layers(model: torch.nn.Module) -> dict[str, Any]:
    """The cross-attention ``Attention`` modules of ``model`` by name (``...attn2``), in model order."""
    return {
        name: module
        for name, module in model.named_modules()
        if getattr(module, "is_cross_attention", False) and hasattr(module, "processor")
    }


@contextmanager
def recording(
    modules: Mapping[str, Any], callback: AttentionCallback
) -> Iterator[dict[str, AttentionRecorder]]:
    """Install recorders on the attention ``modules`` (by layer name) for the ``with`` block.

    Raises RuntimeError if one of them is already being recorded: two traces on one model would each see
    the other's recorder as "the original" and could restore the wrong processors.
    """
    with _install_lock:
        originals = {name: module.processor for name, module in modules.items()}
        if any(isinstance(p, AttentionRecorder) for p in originals.values()):
            raise RuntimeError(
                "this pipeline is already being traced; traces cannot nest or run concurrently on one "
                "pipeline: finish the other `with daam_widget.trace(pipe)` block first"
            )
        recorders = {
            name: _recorder_type(type(original))(original, name, callback)  # type: ignore[arg-type]
            for name, original in originals.items()
        }
        try:
            for name, module in modules.items():
                module.set_processor(recorders[name])
        except BaseException:
            _restore(modules, originals)
            raise
    try:
        yield recorders
    finally:
        _restore(modules, originals)


def _restore(modules: Mapping[str, Any], originals: Mapping[str, Any]) -> None:
    for name, module in modules.items():
        module.set_processor(originals[name])


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
    return text_softmax(query, key, attn.scale, mask, heads).sum(dim=1)


def text_softmax(
    query: torch.Tensor,
    key: torch.Tensor,
    scale: float,
    mask: torch.Tensor | None,
    heads: list[int] | None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) over the keys given: ``(batch, heads, queries, keys)`` float32.

    ``query`` and ``key`` are ``(batch, heads, n, head_dim)``; ``heads`` selects heads first.
    """
    if heads is not None:
        index = torch.as_tensor(heads, device=query.device)
        query, key = query.index_select(1, index), key.index_select(1, index)
        if mask is not None and mask.shape[1] > 1:
            mask = mask.index_select(1, index)
    scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores + mask.float()
    return scores.softmax(dim=-1)


def joint_probabilities(
    query: torch.Tensor,
    text_key: torch.Tensor,
    image_key: torch.Tensor | None,
    scale: float,
    heads: list[int] | None,
) -> torch.Tensor:
    """Image-query x text-key probabilities of joint attention, summed over heads: ``(batch, queries,
    text keys)`` float32. Tensors are ``(batch, heads, n, head_dim)``, after the processor's norms and
    rotary embeddings.

    Without ``image_key`` this is the softmax over the text keys only. With it, it is the block of the
    model's softmax over all keys: per query and head the text-only softmax times the share of attention
    that goes to text. That share comes from one attention call whose values are 1 on text keys and 0 on
    image keys, so no ``queries x all keys`` tensor is made.
    """
    probabilities = text_softmax(query, text_key, scale, None, heads)
    if image_key is not None:
        if heads is not None:
            index = torch.as_tensor(heads, device=query.device)
            query, text_key, image_key = (t.index_select(1, index) for t in (query, text_key, image_key))
        keys = torch.cat([image_key, text_key], dim=2).float()
        # 8 identical columns: fused attention kernels want a value width of a multiple of 8.
        indicator = keys.new_zeros(1, 1, keys.shape[2], 8)
        indicator[:, :, image_key.shape[2] :] = 1
        share = torch.nn.functional.scaled_dot_product_attention(
            query.float(), keys, indicator.expand(*keys.shape[:2], -1, -1), scale=scale
        )
        probabilities = probabilities * share[..., :1]
    return probabilities.sum(dim=1)
