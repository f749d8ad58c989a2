"""Recording attention through diffusers' attention-processor seam.

Each traced attention module gets a recorder: a processor that runs the module's original processor
unchanged, so the generated image is bit-identical to an untraced run, and reports the call to a callback:
its arguments, and the query and key the processor computed. The tracer then needs no second computation
of q and k (projections, norms, rotary embeddings), only the softmax of q kᵀ over the text keys. Where a
family knows that a processor takes q and k as its projection submodules give them (``Projections``),
forward hooks on those keep their outputs: two Python calls. Otherwise a ``TorchFunctionMode``, active only
while the processor runs, sees the query, key, mask and scale it hands to
``torch.nn.functional.scaled_dot_product_attention``: it changes and patches nothing, but costs a Python
call for every torch operation of the processor. A processor that shows neither (xFormers, a
flash-attention package) reports ``None`` and the family recomputes q and k from the arguments.
``recording`` installs recorders module by module (``module.set_processor``, which every diffusers
attention class has, unlike ``set_attn_processor`` on newer transformers) and puts the original processor
objects, and the hooks, back on every exit path.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_install_lock = threading.Lock()
_attention = torch.nn.functional.scaled_dot_product_attention


@dataclass
class AttentionInputs:
    """What a processor passed to ``scaled_dot_product_attention``: ``query`` and ``key`` ``(batch,
    heads, n, head_dim)`` after its norms and rotary embeddings, the additive or boolean ``mask``, and the
    ``scale`` (``None``: 1/√head_dim)."""

    query: torch.Tensor
    key: torch.Tensor
    mask: torch.Tensor | None
    scale: float | None
    layout: tuple[slice, slice] | None = None
    """Where the image queries and the text keys sit along ``n``; None: as the family says for the
    processor's attention call (projections give image queries and text keys only)."""


AttentionCallback = Callable[[str, Any, dict[str, Any], "AttentionInputs | None"], None]
"""``(layer_name, attn, arguments, inputs)`` after the layer ran; ``arguments`` are the processor's
arguments by name (``hidden_states``, ``encoder_hidden_states``, ``attention_mask``, ...), ``inputs``
what it gave the attention function, or None."""


class _AttentionWatch(TorchFunctionMode):
    """Keeps the inputs of the first ``scaled_dot_product_attention`` call made while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: AttentionInputs | None = None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is _attention and self.seen is None:
            named = dict(zip(("query", "key", "value", "attn_mask"), args, strict=False)) | kwargs
            self.seen = AttentionInputs(
                named["query"], named["key"], named.get("attn_mask"), named.get("scale")
            )
        return func(*args, **kwargs)


@dataclass(frozen=True)
class Projections:
    """The submodules whose outputs are a processor's image queries and text keys, for a processor known
    to use them as they are: ``(batch, n, heads * head_dim)`` outputs when ``*_split`` (a projection, or a
    norm acting on the whole projection), else already ``(batch, heads, n, head_dim)`` (a per-head norm)."""

    query: torch.nn.Module
    key: torch.nn.Module
    query_split: bool
    key_split: bool


class AttentionRecorder:
    """An attention processor that runs ``original``, then reports the call to ``callback``.

    With ``projections`` the query and key are taken from forward hooks on those submodules, which cost
    two Python calls; calls with a mask, and processors without them, are watched with
    ``_AttentionWatch``, which costs a Python call for every torch operation the processor makes.
    """

    _signature: inspect.Signature

    def __init__(
        self,
        original: Any,
        layer_name: str,
        callback: AttentionCallback,
        watch: bool = True,
        projections: Projections | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.original = original
        self.layer_name = layer_name
        self.callback = callback
        self.watch = watch
        self.projections = projections
        self.wanted = wanted
        self.outputs: list[torch.Tensor | None] = [None, None]

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.wanted is not None and not self.wanted():
            return self.original(attn, *args, **kwargs)
        arguments = self._signature.bind_partial(attn, *args, **kwargs).arguments
        arguments.pop(next(iter(self._signature.parameters)))
        if not self.watch:
            self.callback(self.layer_name, attn, arguments, None)
            return self.original(attn, *args, **kwargs)
        if self.projections is not None and arguments.get("attention_mask") is None:
            self.outputs = [None, None]
            output = self.original(attn, *args, **kwargs)
            self.callback(self.layer_name, attn, arguments, self._projected(attn))
            return output
        with _AttentionWatch() as watch:
            output = self.original(attn, *args, **kwargs)
        self.callback(self.layer_name, attn, arguments, watch.seen)
        return output

    def keep(self, index: int) -> Callable[[Any, Any, torch.Tensor], None]:
        """A forward hook that keeps the output of projection ``index`` (0: query, 1: key)."""

        def hook(module: Any, args: Any, output: torch.Tensor) -> None:
            self.outputs[index] = output

        return hook

    def _projected(self, attn: Any) -> AttentionInputs | None:
        query, key = self.outputs
        self.outputs = [None, None]
        if query is None or key is None or self.projections is None:
            return None
        p = self.projections
        return AttentionInputs(
            _by_heads(query, attn.heads) if p.query_split else query,
            _by_heads(key, attn.heads) if p.key_split else key,
            None,
            None,
            (_ALL, _ALL),
        )


def _by_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(batch, n, heads * head_dim)`` as the view ``(batch, heads, n, head_dim)``, in one operation."""
    batch, length, width = x.shape
    sb, sn, sw = x.stride()
    head_dim = width // heads
    return x.as_strided((batch, heads, length, head_dim), (sb, head_dim * sw, sn, sw), x.storage_offset())


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
    modules: Mapping[str, Any],
    callback: AttentionCallback,
    watch: bool = True,
    projections: Callable[[Any], Projections | None] | None = None,
    wanted: Callable[[], bool] | None = None,
) -> Iterator[dict[str, AttentionRecorder]]:
    """Install recorders on the attention ``modules`` (by layer name) for the ``with`` block; ``watch``:
    report the attention function's inputs too; ``projections(module)``: where a module's query and key
    come from, if its processor is known to use them as they are; ``wanted()``: whether the call about to
    run is recorded at all (else the original runs alone, with nothing watched).

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
        recorders = {}
        for name, module in modules.items():
            found = projections(module) if projections is not None and watch else None
            recorder = _recorder_type(type(originals[name]))  # type: ignore[arg-type]
            recorders[name] = recorder(originals[name], name, callback, watch, found, wanted)
        hooks: list[Any] = []
        try:
            for name, module in modules.items():
                found = recorders[name].projections
                if found is not None:
                    hooks.append(found.query.register_forward_hook(recorders[name].keep(0)))
                    hooks.append(found.key.register_forward_hook(recorders[name].keep(1)))
                module.set_processor(recorders[name])
        except BaseException:
            _restore(modules, originals, hooks)
            raise
    try:
        yield recorders
    finally:
        _restore(modules, originals, hooks)


def _restore(modules: Mapping[str, Any], originals: Mapping[str, Any], hooks: list[Any]) -> None:
    for hook in hooks:
        hook.remove()
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
    return text_probabilities(AttentionInputs(query, key, mask, attn.scale), _ALL, _ALL, _ALL, heads, False)


def joint_probabilities(
    query: torch.Tensor,
    text_key: torch.Tensor,
    image_key: torch.Tensor | None,
    scale: float,
    heads: list[int] | None,
) -> torch.Tensor:
    """Image-query x text-key probabilities of joint attention, summed over heads: ``(batch, queries,
    text keys)`` float32, from q and k computed again. Tensors are ``(batch, heads, n, head_dim)``, after
    the processor's norms and rotary embeddings. Without ``image_key`` the softmax runs over the text keys
    only; with it the result is the text block of the softmax over all keys (see ``text_probabilities``).
    """
    if image_key is None:
        return text_probabilities(
            AttentionInputs(query, text_key, None, scale), _ALL, _ALL, _ALL, heads, False
        )
    keys = torch.cat([image_key, text_key], dim=2)
    text = slice(image_key.shape[2], None)
    return text_probabilities(AttentionInputs(query, keys, None, scale), _ALL, _ALL, text, heads, True)


def text_probabilities(
    inputs: AttentionInputs,
    rows: slice,
    image: slice,
    text: slice,
    heads: list[int] | None,
    share: bool,
) -> torch.Tensor:
    """Image-query x text-key probabilities of ``inputs`` (the processor's own q and k, or q and k
    computed again), summed over heads: ``(rows, queries, text keys)`` float32.

    ``image`` and ``text`` are where the image queries and the text keys sit along the sequence. The
    softmax runs over the text keys only. With ``share`` the result is the text block of the model's
    softmax over all keys: per query and head the text-only softmax times the share of attention that
    goes to text, which comes from one attention call whose values are 1 on text keys and 0 on the others,
    so no ``queries x all keys`` tensor is made. On a GPU the cost of this is the number of operations it
    dispatches, so heads are folded into the batch by views where the strides allow, the scale and an
    additive mask go into the one batched product (``baddbmm``), and nothing is transposed.
    """
    query, key = inputs.query, inputs.key
    count = len(range(*rows.indices(query.shape[0])))
    q = _as_batch(query, rows, image, _ALL, heads)
    text_key = _as_batch(key, rows, text, _ALL, heads, transposed=True)
    bias = _bias(inputs.mask, query, rows, image, text, heads)
    scale = inputs.scale if inputs.scale is not None else query.shape[-1] ** -0.5
    if bias is None:
        scores = torch.baddbmm(_zero(q), q, text_key, beta=0, alpha=scale)
    else:
        scores = torch.baddbmm(bias, q, text_key, alpha=scale)
    probabilities = scores.softmax(dim=-1)
    if share:
        every_key = _as_batch(key, rows, _ALL, _ALL, heads)
        text_share = torch.nn.functional.scaled_dot_product_attention(
            q,
            every_key,
            _indicator(every_key, text),
            attn_mask=_bias(inputs.mask, query, rows, image, _ALL, heads),
            scale=scale,
        )
        probabilities = probabilities.mul_(text_share[..., :1])
    if count == 1:
        return probabilities.sum(dim=0, keepdim=True)
    return probabilities.view(count, -1, *probabilities.shape[1:]).sum(dim=1)


def _as_batch(
    x: torch.Tensor,
    rows: slice,
    dim2: slice,
    dim3: slice,
    heads: list[int] | None,
    transposed: bool = False,
    batch: int | None = None,
) -> torch.Tensor:
    """``x[rows, heads, dim2, dim3]`` of a ``(batch or 1, heads or 1, n, m)`` tensor (size-1 dimensions
    broadcast) as ``(rows * heads, n', m')`` float32, or ``(rows * heads, m', n')`` if ``transposed``: one
    view when no head is picked, the rows' strides merge and the dtype is float32, else copied."""
    batch, num_heads = batch or x.shape[0], x.shape[1]
    start, stop, _ = rows.indices(batch)
    count = stop - start
    strides = [0 if size == 1 else stride for size, stride in zip(x.shape, x.stride(), strict=True)]
    (first, last, _), (left, right, _) = dim2.indices(x.shape[2]), dim3.indices(x.shape[3])
    if heads is None and (count == 1 or strides[0] == num_heads * strides[1]):
        size = [count * num_heads, last - first, right - left]
        stride = [strides[1], strides[2], strides[3]]
        offset = x.storage_offset() + start * strides[0] + first * strides[2] + left * strides[3]
        if transposed:
            size[1:], stride[1:] = size[:0:-1], stride[:0:-1]
        view = x.as_strided(size, stride, offset)
    else:
        picked = x.expand(batch, *x.shape[1:])[rows, :, dim2, dim3]
        if heads is not None:
            picked = picked.index_select(1, torch.as_tensor(heads, device=x.device))
        view = picked.reshape(-1, *picked.shape[2:])
        if transposed:
            view = view.transpose(1, 2)
    return view if view.dtype == torch.float32 else view.float()


def _bias(
    mask: torch.Tensor | None,
    query: torch.Tensor,
    rows: slice,
    image: slice,
    text: slice,
    heads: list[int] | None,
) -> torch.Tensor | None:
    """An attention mask ``(batch or 1, heads or 1, queries or 1, keys)`` as an additive float32 bias
    ``(rows * heads, image queries or 1, text keys)``."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, -math.inf)
    if mask.shape[1] != query.shape[1]:
        mask = mask.expand(mask.shape[0], query.shape[1], *mask.shape[2:])
    return _as_batch(mask, rows, image if mask.shape[2] > 1 else _ALL, text, heads, batch=query.shape[0])


_zeros: dict[torch.device, torch.Tensor] = {}
_indicators: dict[tuple[torch.device, int, int, int], torch.Tensor] = {}


def _zero(like: torch.Tensor) -> torch.Tensor:
    """A float32 0 on ``like``'s device, made once: ``baddbmm``'s ignored input."""
    if like.device not in _zeros:
        _zeros[like.device] = torch.zeros((), device=like.device)
    return _zeros[like.device]


def _indicator(keys: torch.Tensor, text: slice) -> torch.Tensor:
    """Values that are 1 on the text keys and 0 on the others, ``(batch, keys, 8)`` (8 identical columns:
    fused attention kernels want a value width of a multiple of 8), made once per layout."""
    first, last, _ = text.indices(keys.shape[1])
    key = (keys.device, keys.shape[1], first, last)
    if key not in _indicators:
        indicator = torch.zeros(1, keys.shape[1], 8, device=keys.device)
        indicator[:, first:last] = 1
        _indicators[key] = indicator
    return _indicators[key].expand(keys.shape[0], -1, -1)


_ALL = slice(None)
