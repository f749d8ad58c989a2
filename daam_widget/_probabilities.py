"""From a processor's q and k to DAAM's probabilities, in as few dispatched operations as possible.

On a GPU the tracer's cost is the operations it launches, so heads are folded into the batch by views
where the strides allow, the scale and an additive mask go into one batched product (``baddbmm``), and
the share of attention that goes to text (``softmax_over="all"`` on joint attention) comes from one fused
attention call. Tensors that do not change between calls (a zero, the text indicator) are made once per
``Constants``, which a trace owns and drops with it.
"""

from __future__ import annotations

import math
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
    """What the processor made ``mask`` from, the same object in every layer of a denoiser call (PRX's
    processors make their mask anew in each layer); None: the mask is that object itself."""


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
        query: torch.Tensor,
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
        base = source if source is not None else mask._base if mask._base is not None else mask
        selection = (
            tuple((s.start, s.stop, s.step) for s in (rows, image, text)),
            (mask.shape, mask.stride(), mask.storage_offset(), mask.dtype),
            query.shape[1],
            heads,
        )
        if self._bias is None or self._bias[0] is not base or self._bias[1] != selection:
            self._bias = (base, selection, _bias(mask, query, rows, image, text, heads))
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
    constants = constants or Constants()
    query, key = inputs.query, inputs.key
    count = len(range(*rows.indices(query.shape[0])))
    q = _as_batch(query, rows, image, _ALL, heads)
    text_key = _as_batch(key, rows, text, _ALL, heads, transposed=True)
    bias = constants.bias(inputs.mask, query, rows, image, text, heads, inputs.mask_source)
    scale = inputs.scale if inputs.scale is not None else query.shape[-1] ** -0.5
    if bias is None:
        scores = torch.baddbmm(constants.zero(q), q, text_key, beta=0, alpha=scale)
    else:
        scores = torch.baddbmm(bias, q, text_key, alpha=scale)
    probabilities = scores.softmax(dim=-1)
    if share:
        every_key = _as_batch(key, rows, _ALL, _ALL, heads)
        text_share = torch.nn.functional.scaled_dot_product_attention(
            q,
            every_key,
            constants.indicator(every_key, text),
            attn_mask=_bias(inputs.mask, query, rows, image, _ALL, heads),
            scale=scale,
        )
        probabilities = probabilities.mul_(text_share[..., :1])
    if count == 1:
        return probabilities.sum(dim=0, keepdim=True)
    return probabilities.view(count, -1, *probabilities.shape[1:]).sum(dim=1)


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
