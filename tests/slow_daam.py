"""An independent, slow DAAM: the test oracle.

It records every (layer, head, step) attention map with diffusers' own ``Attention.get_attention_scores``
(not daam_widget's code), upsamples each one separately to the image size, sums them, and clamps at zero
once. It knows the guidance layout from the test, not from the pipeline.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


class _Record:
    def __init__(self, original, name, store):
        self.original, self.name, self.store = original, name, store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        if encoder_hidden_states is not None:
            with torch.no_grad():
                q = attn.head_to_batch_dim(attn.to_q(hidden_states))
                k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
                probs = attn.get_attention_scores(q.float(), k.float(), None)
            batch = hidden_states.shape[0]
            self.store.append((self.name, probs.view(batch, attn.heads, *probs.shape[1:]).cpu()))
        return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)


@contextlib.contextmanager
def record_slowly(unet):
    """Yield a list that fills with (layer name, probabilities (batch, heads, queries, keys)) per call."""
    store = []
    originals = dict(unet.attn_processors)
    unet.set_attn_processor(
        {
            k: _Record(v, k.removesuffix(".processor"), store) if "attn2" in k else v
            for k, v in originals.items()
        }
    )
    try:
        yield store
    finally:
        unet.set_attn_processor(dict(originals))


def slow_heat_maps(store, row, latent, image, layers=None, heads=None, steps=None):
    """(keys, H, W): every selected map upsampled on its own, summed, clamped once.

    ``row`` is the batch row of the image, or a function of the step giving it.
    """
    names = []
    for name, _ in store:
        if name in names:
            break
        names.append(name)
    total = None
    for call, (name, probs) in enumerate(store):
        step = call // len(names)
        if layers is not None and not any(name.startswith(p) for p in layers):
            continue
        if steps is not None and step not in steps:
            continue
        queries = probs.shape[2]
        h, w = latent
        while h * w > queries:
            h, w = (h + 1) // 2, (w + 1) // 2
        for head in range(probs.shape[1]):
            if heads is not None and head not in heads:
                continue
            m = probs[row(step) if callable(row) else row, head].T.reshape(1, -1, h, w)
            up = F.interpolate(m.double(), size=image, mode="bicubic", align_corners=False)[0]
            total = up if total is None else total + up
    return total.clamp(min=0)
