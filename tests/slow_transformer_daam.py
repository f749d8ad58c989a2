"""An independent, slow DAAM for transformer pipelines (SD3, Flux, PixArt, Sana): the test oracle.

It shares nothing with daam_widget. It records q, k, the mask and the scale at the very point where each
diffusers attention processor calls attention, by wrapping ``scaled_dot_product_attention`` in
``torch.nn.functional`` (diffusers looks it up there on each call, as ``F.scaled_dot_product_attention``) and
the ``dispatch_attention_fn`` that Flux looks up in ``transformer_flux``, so rotary embeddings, q/k norms and
the concatenation of image and text are exactly the processor's own. It then redoes the softmax in float64
from those tensors. Forward pre-hooks tell it which module made each call, and per transformer call the text
length, the token grid and whether SD3 skip-layer guidance is on.

Layouts (keys of length ``image + text`` are joint attention, otherwise only cross-attention counts):
SD3 joint attention is [image, text]; Flux's, Flux.2's, Chroma's and Qwen-Image's are [text, image];
PixArt's and Sana's ``attn2`` take text keys only (an attention module given ``encoder_hidden_states``
with ``text_len`` keys). Self-attention (PixArt and Sana ``attn1``, SD3.5's image-only ``attn2``) is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math

import torch
import torch.nn.functional as F
from diffusers.models.transformers import transformer_flux

TEXT_FIRST = {
    "FluxTransformer2DModel",
    "Flux2Transformer2DModel",
    "QwenImageTransformer2DModel",
    "ChromaTransformer2DModel",
    "CogView3PlusTransformer2DModel",
    "CogView4Transformer2DModel",
    "OvisImageTransformer2DModel",
    "Krea2Transformer2DModel",
    "PRXTransformer2DModel",
    "LongCatImageTransformer2DModel",
    "BriaFiboTransformer2DModel",
}
"""Transformers whose joint attention runs over [text, image]; the others over [image, text]."""
IMAGE_QUERIES = {"PRXTransformer2DModel"}
"""The queries are the image tokens alone; the keys hold the text and the image."""
REGISTERS = {"AuraFlowTransformer2DModel": 8}
"""Learned tokens before the text: [registers, text, image]."""
TEXT_LAST = {"HiDreamImageTransformer2DModel"}
"""[image padded to a fixed length, text]: the text keys are the last ones."""
TEXT_THEN_GLYPHS = {"HunyuanImageTransformer2DModel"}
"""[image, text, the glyph encoder's (ByT5's) masked padding]."""
CAPTION_FIRST = {"Lumina2Transformer2DModel": True, "ZImageTransformer2DModel": False}
"""Main layers over one sequence per sample: [caption, image] or [image padded to 32, caption]."""


def _joint_layout(kind, n, t, keys):
    """(image queries, text keys) of a joint attention call over ``keys`` keys, or None."""
    registers = REGISTERS.get(kind, 0)
    if kind in TEXT_LAST:
        return (slice(None, n), slice(keys - t, keys)) if keys >= n + t else None
    if kind in TEXT_THEN_GLYPHS:
        return (slice(None, n), slice(n, n + t)) if keys >= n + t else None
    if keys != n + t + registers:
        return None
    if kind in TEXT_FIRST or registers:
        image = slice(None, n) if kind in IMAGE_QUERIES else slice(registers + t, registers + t + n)
        return image, slice(registers, registers + t)
    return slice(None, n), slice(n, n + t)


@dataclasses.dataclass
class Call:
    """One transformer forward call. ``layers``: (module name, probs_text, probs_all), each probability
    tensor float64 on the CPU, (batch, heads, image queries, text keys)."""

    grid: tuple[int, int]
    text_len: int
    skip_layers: bool
    layers: list = dataclasses.field(default_factory=list)
    kind: str = ""
    caption_lengths: list | None = None
    """Lumina2 and Z-Image: each sample's caption length in its own sequence (see ``CAPTION_FIRST``)."""


def _arguments(fn, args, kwargs):
    return inspect.signature(fn).bind(*args, **kwargs).arguments


def _probs(call, q, k, mask, scale, cross, module):
    """(probs_text, probs_all) of the image queries over the text keys, or None if there are no text keys.

    q, k: (batch, heads, sequence, head_dim); ``cross``: the module was given ``encoder_hidden_states``.
    """
    n, t = call.grid[0] * call.grid[1], call.text_len
    q, k = q.detach().double().cpu(), k.detach().double().cpu()
    if call.caption_lengths is not None:
        return _per_sample_probs(call, q, k, mask, scale) if module.startswith("layers.") else None
    joint = _joint_layout(call.kind, n, t, k.shape[2])
    if joint is not None:
        image, text = joint
    elif k.shape[2] == t and q.shape[2] == n and cross:  # cross-attention
        image, text = slice(None), slice(None)
    else:
        return None
    scale = scale if scale is not None else 1 / math.sqrt(q.shape[-1])
    scores = q[:, :, image] @ k.transpose(-1, -2) * scale
    if mask is not None:
        mask = mask.detach().cpu()
        if mask.ndim == 2:  # (batch, keys), which dispatch_attention_fn also accepts
            mask = mask[:, None, None, :]
        if mask.dtype == torch.bool:  # True: attend
            mask = torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, -math.inf)
        mask = mask.double()
        scores = scores + (mask[:, :, image] if mask.shape[2] > 1 else mask)
    assert scores.shape[2] == n, (scores.shape, call.grid)
    return scores[..., text].softmax(-1), scores.softmax(-1)[..., text]


def _per_sample_probs(call, q, k, mask, scale):
    """Lumina2's and Z-Image's main layers: per sample, its image queries over its caption's own keys
    (Lumina2: [caption, image]; Z-Image: [image padded to a multiple of 32, caption]); zeros after a
    shorter caption."""
    n = call.grid[0] * call.grid[1]
    scale = scale if scale is not None else 1 / math.sqrt(q.shape[-1])
    texts, alls = [], []
    for b, length in enumerate(call.caption_lengths):
        if CAPTION_FIRST[call.kind]:
            image, text = slice(length, length + n), slice(0, length)
        else:
            image, text = slice(0, n), slice(n + (-n) % 32, n + (-n) % 32 + length)
        scores = q[b, :, image] @ k[b].transpose(-1, -2) * scale
        if mask is not None:
            row = mask[b].detach().cpu().reshape(-1)
            scores = scores.masked_fill(~row.bool(), -math.inf) if row.dtype == torch.bool else scores + row
        pad = (0, call.text_len - length)
        texts.append(F.pad(scores[..., text].softmax(-1), pad))
        alls.append(F.pad(scores.softmax(-1)[..., text], pad))
    return torch.stack(texts), torch.stack(alls)


@contextlib.contextmanager
def record_at_attention(transformer):
    """Yield a list that fills with one ``Call`` per forward call of ``transformer``."""
    calls, state = [], {"module": None, "cross": False, "busy": False}
    kind = type(transformer).__name__

    def on_transformer(module, args, kwargs):
        a = _arguments(module.forward, args, kwargs)
        hidden = a.get("hidden_states")
        if "cap_feats" in a:  # Z-Image: lists of per-sample latents and captions
            lengths = [len(c) for c in a["cap_feats"]]
            grid = tuple(int(side) // a.get("patch_size", 2) for side in a["x"][0].shape[-2:])
            calls.append(Call(grid, max(lengths), False, kind=kind, caption_lengths=lengths))
            return
        if a.get("img_shapes") is not None:  # Qwen-Image: (frames, h, w) of each image
            first = a["img_shapes"][0]
            first = first[0] if isinstance(first[0], (tuple, list)) else first  # NucleusMoE: one per sample
            grid = tuple(int(x) for x in first[1:])
        elif a.get("img_ids") is not None:  # (batch or not, tokens, (t,) h, w, ...): Flux and Flux.2
            ids = a["img_ids"].reshape(-1, a["img_ids"].shape[-1])
            ids = ids[: hidden.shape[1]]
            rows, columns = ids[:, 1], ids[:, 2]  # LongCat's count from 512
            grid = (int(rows.max() - rows.min()) + 1, int(columns.max() - columns.min()) + 1)
        elif a.get("position_ids") is not None:  # Krea-2: rotary positions, the image rows (0, row, column)
            rows = a["position_ids"][a["encoder_hidden_states"].shape[1] :]
            grid = (int(rows[:, 1].max()) + 1, int(rows[:, 2].max()) + 1)
        elif hidden.ndim == 5:  # Kandinsky 5: (batch, frames, h, w, channels), 1x2x2 patches
            _, ph, pw = module.config.patch_size
            grid = (hidden.shape[2] // ph, hidden.shape[3] // pw)
        else:
            p = module.config.patch_size
            p = p[-1] if isinstance(p, (tuple, list)) else p
            grid = (hidden.shape[-2] // p, hidden.shape[-1] // p)
        if a.get("encoder_hidden_states_llama3") is not None:  # HiDream: T5, then two Llama segments
            text = a["encoder_hidden_states_t5"].shape[1] + 2 * a["encoder_hidden_states_llama3"].shape[2]
        elif a.get("text_bth") is not None:  # ERNIE-Image: texts padded to the longest
            text = a["text_bth"].shape[1]
        else:
            text = a["encoder_hidden_states"].shape[1]
            if a.get("encoder_hidden_states_t5") is not None:  # HunyuanDiT: BERT, then mT5
                text += a["encoder_hidden_states_t5"].shape[1]
        lengths = None
        if kind in CAPTION_FIRST:
            lengths = [int(x) for x in a["encoder_attention_mask"].sum(1)]
        calls.append(Call(grid, text, a.get("skip_layers") is not None, kind=kind, caption_lengths=lengths))

    def on_attention(name):
        def hook(module, args, kwargs):
            state["module"] = name
            state["cross"] = _arguments(module.forward, args, kwargs).get("encoder_hidden_states") is not None

        return hook

    def leave_attention(module, args, output):
        state["module"] = None

    def wrap(original, heads_second):
        def wrapper(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
            if state["module"] is not None and not state["busy"]:
                assert not is_causal
                q, k = (query, key) if heads_second else (query.transpose(1, 2), key.transpose(1, 2))
                probs = _probs(calls[-1], q, k, attn_mask, scale, state["cross"], state["module"])
                if probs is not None:
                    calls[-1].layers.append((state["module"], *probs))
            busy, state["busy"] = state["busy"], True  # dispatch_attention_fn may call SDPA itself
            try:
                kw.update(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
                return original(query, key, value, **kw)
            finally:
                state["busy"] = busy

        return wrapper

    sdpa, dispatch = F.scaled_dot_product_attention, transformer_flux.dispatch_attention_fn
    handles = [transformer.register_forward_pre_hook(on_transformer, with_kwargs=True)]
    for name, module in transformer.named_modules():
        if hasattr(module, "processor"):
            handles.append(module.register_forward_pre_hook(on_attention(name), with_kwargs=True))
            handles.append(module.register_forward_hook(leave_attention))
    F.scaled_dot_product_attention = wrap(sdpa, heads_second=True)
    transformer_flux.dispatch_attention_fn = wrap(dispatch, heads_second=False)
    try:
        yield calls
    finally:
        F.scaled_dot_product_attention, transformer_flux.dispatch_attention_fn = sdpa, dispatch
        for handle in handles:
            handle.remove()


def slow_transformer_maps(calls, row, image_size, mode="text", calls_filter=None, heads=None) -> torch.Tensor:
    """(text_keys, H, W) float64: every (call, layer, head) map of batch row ``row`` upsampled on its own to
    ``image_size`` = (H, W), summed, clamped at zero once.

    ``mode`` "text" is the softmax over the text keys only, "all" the text-key block of the softmax over all
    keys. ``calls_filter(index, call) -> bool`` picks calls (e.g. drop skip-layer calls, or keep only the
    conditional call of Flux true-CFG, which runs the positive call first, then the negative one, each step).
    """
    total = None
    for index, call in enumerate(calls):
        if calls_filter is not None and not calls_filter(index, call):
            continue
        for _, probs_text, probs_all in call.layers:
            probs = {"text": probs_text, "all": probs_all}[mode]
            for head in range(probs.shape[1]):
                if heads is not None and head not in heads:
                    continue
                m = probs[row, head].T.reshape(1, -1, *call.grid)
                up = F.interpolate(m, size=image_size, mode="bicubic", align_corners=False)[0]
                total = up if total is None else total + up
    return total.clamp(min=0)
