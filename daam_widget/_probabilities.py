"""From a processor's q and k to DAAM's probabilities, in as few dispatched operations as possible.

On a GPU the tracer's cost is the operations it launches, so the layer calls of one denoiser call whose
q and k have the same shapes are computed together (``TextAttention``, ``probabilities_together``): one
concatenation, one batched product with the scale folded in (``baddbmm``), one softmax and one sum over
heads for all of them. Heads and layers are folded into the batch by views where the strides allow, and
the share of attention that goes to text (``softmax_over="all"`` on joint attention) comes from one fused
attention call. Tensors that do not change between calls (a zero, the text indicator) are made once per
``Constants``, which a trace owns and drops with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

_ALL = slice(None)


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
    mask_source: torch.Tensor | None = None
    """What the processor made ``mask`` from, the same object in every layer of a denoiser call, where
    processors make their mask anew in each layer; None: the mask is that object itself."""
    split_heads: tuple[int, int] = (0, 0)
    """Heads to split the last dimension of ``query`` and of ``key`` into, where they are projection
    outputs ``(batch, n, heads * head_dim)``; 0: already ``(batch, heads, n, head_dim)``. Splitting waits
    until layers are computed together, so that it is one view for all of them."""
    value: torch.Tensor | None = None
    output: torch.Tensor | None = None
    """The call's values and its result ``(batch, heads, n, head_dim)``, where they were asked for (the
    blocks that concept maps read)."""

    def heads(self) -> tuple[int, int]:
        """Query and key heads; 0 where the tensor is neither shape."""
        return tuple(  # type: ignore[return-value]
            split or (t.shape[1] if t.ndim == 4 else 0)
            for t, split in zip((self.query, self.key), self.split_heads, strict=True)
        )


class Constants:
    """Tensors made once and reused by every call: a float32 zero per device (``baddbmm``'s ignored
    input) and the text indicator per layout."""

    def __init__(self) -> None:
        self._zeros: dict[torch.device, torch.Tensor] = {}
        self._indicators: dict[tuple[torch.device, int, int, int], torch.Tensor] = {}
        self._bias: tuple[torch.Tensor, tuple, torch.Tensor | None] | None = None

    def zero(self, like: torch.Tensor) -> torch.Tensor:
        if like.device not in self._zeros:
            self._zeros[like.device] = torch.zeros((), device=like.device)
        return self._zeros[like.device]

    def bias(
        self,
        mask: torch.Tensor | None,
        batch_heads: tuple[int, int],
        rows: slice,
        image: slice,
        text: slice,
        heads: list[int] | None,
        source: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """``_bias`` of a mask, kept while the same mask (or the same ``source`` it was made from) comes
        back with the same selection: a denoiser hands one mask to all its layers."""
        if mask is None:
            return None
        base, view = _mask_identity(mask, source)
        selection = (
            tuple((s.start, s.stop, s.step) for s in (rows, image, text)),
            view,
            batch_heads,
            heads,
        )
        if self._bias is None or self._bias[0] is not base or self._bias[1] != selection:
            self._bias = (base, selection, _bias(mask, batch_heads, rows, image, text, heads))
        return self._bias[2]

    def indicator(self, keys: torch.Tensor, text: slice) -> torch.Tensor:
        """Values that are 1 on the text keys and 0 on the others, ``(batch, keys, 8)`` (8 identical
        columns: fused attention kernels want a value width of a multiple of 8)."""
        first, last, _ = text.indices(keys.shape[1])
        key = (keys.device, keys.shape[1], first, last)
        if key not in self._indicators:
            indicator = torch.zeros(1, keys.shape[1], 8, device=keys.device)
            indicator[:, first:last] = 1
            self._indicators[key] = indicator
        return self._indicators[key].expand(keys.shape[0], -1, -1)


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


@dataclass(frozen=True)
class TextAttention:
    """One layer call's image-query x text-key attention, to be computed: ``rows`` of the batch, image
    queries and text keys at ``image`` and ``text`` along the sequence, summed over ``heads``, and, with
    ``share``, times the share of attention that goes to text (see ``text_probabilities``)."""

    inputs: AttentionInputs
    rows: slice
    image: slice
    text: slice
    heads: list[int] | None
    share: bool

    def together_key(self) -> tuple:
        """Calls with equal keys are computed together: the same shapes, selection, scale and mask."""
        i = self.inputs
        base, view = _mask_identity(i.mask, i.mask_source) if i.mask is not None else (None, None)
        return (
            i.query.shape,
            i.query.dtype,
            i.query.device,
            i.key.shape,
            i.key.dtype,
            i.split_heads,
            i.scale,
            id(base),
            view,
            *((s.start, s.stop, s.step) for s in (self.rows, self.image, self.text)),
            tuple(self.heads) if self.heads is not None else None,
            id(self) if self.share else None,
        )

    def held_bytes(self) -> int:
        """Memory that keeping this call for later holds on to."""
        return sum(t.numel() * t.element_size() for t in (self.inputs.query, self.inputs.key))

    def result_bytes(self) -> int:
        """Memory the float32 scores of this call take while it is computed."""
        query_heads, _ = self.inputs.heads()
        heads = len(self.heads) if self.heads is not None else query_heads
        n = self.inputs.query.shape[1 if self.inputs.split_heads[0] else 2]
        key_n = self.inputs.key.shape[1 if self.inputs.split_heads[1] else 2]
        rows = len(range(*self.rows.indices(self.inputs.query.shape[0])))
        queries, keys = len(range(*self.image.indices(n))), len(range(*self.text.indices(key_n)))
        return 4 * rows * heads * queries * keys


def probabilities_together(calls: Sequence[TextAttention], constants: Constants) -> torch.Tensor:
    """Each call's probabilities, summed over heads: ``(calls, rows, queries, text keys)`` float32, for
    calls with one ``together_key``. Their queries and keys are concatenated once, so the whole group
    dispatches what one call would."""
    first = calls[0]
    layers = len(calls)
    if first.share and layers > 1:
        raise ValueError("calls with share=True are computed one by one")
    inputs = first.inputs
    query, key = inputs.query, inputs.key
    if layers > 1:
        query, key = torch.cat([c.inputs.query for c in calls]), torch.cat([c.inputs.key for c in calls])
    rows, heads = first.rows, first.heads
    split_query, split_key = inputs.split_heads
    batch = query.shape[0] // layers
    count = len(range(*rows.indices(batch)))
    q = _as_batch(query, rows, first.image, _ALL, heads, layers=layers, split=split_query)
    text_key = _as_batch(key, rows, first.text, _ALL, heads, transposed=True, layers=layers, split=split_key)
    num_heads, head_dim = inputs.heads()[0], q.shape[-1]
    bias = constants.bias(
        inputs.mask, (batch, num_heads), rows, first.image, first.text, heads, inputs.mask_source
    )
    scale = inputs.scale if inputs.scale is not None else head_dim**-0.5
    if bias is not None and layers == 1:
        scores = torch.baddbmm(bias, q, text_key, alpha=scale)
    else:
        scores = torch.baddbmm(constants.zero(q), q, text_key, beta=0, alpha=scale)
        if bias is not None:
            scores.view(layers, *bias.shape[:1], *scores.shape[1:]).add_(bias)
    probabilities = scores.softmax(dim=-1)
    if first.share:
        every_key = _as_batch(key, rows, _ALL, _ALL, heads, split=split_key)
        text_share = torch.nn.functional.scaled_dot_product_attention(
            q,
            every_key,
            constants.indicator(every_key, first.text),
            attn_mask=_bias(inputs.mask, (batch, num_heads), rows, first.image, _ALL, heads),
            scale=scale,
        )
        probabilities = probabilities.mul_(text_share[..., :1])
    return probabilities.view(layers, count, -1, *probabilities.shape[1:]).sum(dim=2)


def text_probabilities(
    inputs: AttentionInputs,
    rows: slice,
    image: slice,
    text: slice,
    heads: list[int] | None,
    share: bool,
    constants: Constants | None = None,
) -> torch.Tensor:
    """Image-query x text-key probabilities of ``inputs`` (the processor's own q and k, or q and k
    computed again), summed over heads: ``(rows, queries, text keys)`` float32.

    ``image`` and ``text`` are where the image queries and the text keys sit along the sequence. The
    softmax runs over the text keys only. With ``share`` the result is the text block of the model's
    softmax over all keys: per query and head the text-only softmax times the share of attention that
    goes to text, which comes from one attention call whose values are 1 on text keys and 0 on the others,
    so no ``queries x all keys`` tensor is made.
    """
    call = TextAttention(inputs, rows, image, text, heads, share)
    return probabilities_together([call], constants or Constants())[0]


def probabilities_by_row(
    inputs: AttentionInputs,
    rows: slice,
    layouts: Sequence[tuple[slice, slice]],
    num_keys: int,
    heads: list[int] | None,
    share: bool,
    constants: Constants | None = None,
) -> torch.Tensor:
    """``text_probabilities`` where each batch row has its own layout (``layouts[row]``: image queries and
    text keys, as when each sample's text has its own length inside one padded sequence): ``(rows,
    queries, num_keys)``, each row's keys first and zeros after them (one row: its own keys only)."""
    start, stop, _ = rows.indices(inputs.query.shape[0])
    pieces = []
    for row in range(start, stop):
        image, text = layouts[row]
        single = text_probabilities(inputs, slice(row, row + 1), image, text, heads, share, constants)
        pieces.append(single)
    if len(pieces) == 1:
        return pieces[0]  # the sums take fewer keys as zeros past them
    return torch.cat([torch.nn.functional.pad(p, (0, num_keys - p.shape[-1])) for p in pieces])


def _as_batch(
    x: torch.Tensor,
    rows: slice,
    dim2: slice,
    dim3: slice,
    heads: list[int] | None,
    transposed: bool = False,
    batch: int | None = None,
    layers: int = 1,
    split: int = 0,
) -> torch.Tensor:
    """``x[rows, heads, dim2, dim3]`` of a ``(batch or 1, heads or 1, n, m)`` tensor (size-1 dimensions
    broadcast; with ``split``, a ``(batch, n, split * m)`` one read as such) as ``(rows * heads, n', m')``
    float32, or ``(rows * heads, m', n')`` if ``transposed``; with ``layers``, ``x`` is that many such
    tensors one after another along its first dimension, and the result ``(layers * rows * heads, ...)``.
    One view when no head is picked, the layers', rows' and heads' strides merge and the dtype is float32;
    else one copy (which also makes it float32)."""
    if split:
        (b, n, width), (sb, sn, sw) = x.shape, x.stride()
        shape, given = [b, split, n, width // split], [sb, width // split * sw, sn, sw]
    else:
        shape, given = list(x.shape), list(x.stride())
    batch, num_heads = batch or shape[0] // layers, shape[1]
    start, stop, _ = rows.indices(batch)
    count = stop - start
    strides = [0 if size == 1 else stride for size, stride in zip(shape, given, strict=True)]
    (first, last, _), (left, right, _) = dim2.indices(shape[2]), dim3.indices(shape[3])
    offset = x.storage_offset() + start * strides[0] + first * strides[2] + left * strides[3]
    inner = [last - first, right - left], [strides[2], strides[3]]
    if transposed:
        inner = inner[0][::-1], inner[1][::-1]
    size = [layers, count, num_heads, *inner[0]]
    stride = [batch * strides[0], strides[0], strides[1], *inner[1]]
    if heads is None:
        kept = [(n, st) for n, st in zip(size[:3], stride[:3], strict=True) if n != 1] or [(1, 0)]
        merges = all(outer == n * st for (_, outer), (n, st) in itertools.pairwise(kept))
        if merges and x.dtype == torch.float32:
            return x.as_strided([layers * count * num_heads, *inner[0]], [kept[-1][1], *inner[1]], offset)
        picked = x.as_strided(size, stride, offset)
    else:
        picked = x.as_strided(size, stride, offset).index_select(2, torch.as_tensor(heads, device=x.device))
    flat = torch.empty(picked.shape, dtype=torch.float32, device=x.device)
    return flat.copy_(picked).view(-1, *picked.shape[3:])


def _bias(
    mask: torch.Tensor | None,
    batch_heads: tuple[int, int],
    rows: slice,
    image: slice,
    text: slice,
    heads: list[int] | None,
) -> torch.Tensor | None:
    """An attention mask ``(batch or 1, heads or 1, queries or 1, keys)`` of a ``batch_heads`` attention
    call as an additive float32 bias ``(rows * heads, image queries or 1, text keys)``."""
    if mask is None:
        return None
    batch, num_heads = batch_heads
    if mask.shape[1] != num_heads:
        mask = mask.expand(mask.shape[0], num_heads, *mask.shape[2:])
    picked = _as_batch(mask, rows, image if mask.shape[2] > 1 else _ALL, text, heads, batch=batch)
    if mask.dtype == torch.bool:  # converted after the cut (a video's S x S mask is gigabytes as floats)
        picked.log_()  # the float copy holds 1 where a key may be attended to: log 1 = 0, log 0 = -inf
    return picked


def _mask_identity(mask: torch.Tensor, source: torch.Tensor | None) -> tuple[torch.Tensor, tuple]:
    """What makes two masks the same: the tensor they were made from (``source``, or the tensor ``mask``
    views: processors view one mask anew in each layer) and how ``mask`` looks at it."""
    base = source if source is not None else mask._base if mask._base is not None else mask
    return base, (mask.shape, mask.stride(), mask.storage_offset(), mask.dtype)
