"""ConceptAttention (Helbling et al., ICML 2025): concept maps from the attention outputs of joint blocks.

Each concept (any words, not only the prompt's) is encoded alone by the pipeline's own text encoder; its
tokens' states at the first joint block's input (after the denoiser's text embedder) are averaged into one
concept token. At every traced step the concept tokens run through the joint (double-stream) blocks with
the text stream's weights and modulation: in each block they attend to themselves and to the image, never
to the prompt, and the image never attends to them. This is done by calling the block itself on the
concept tokens with an image of no tokens, while the block's attention call gets the image's keys and
values, taken from the block's real attention call, appended to the concepts' own: the block's code runs
as it is (its norms, modulation, rotary embedding, feed-forward), and the generation is untouched, since
the real call is not changed. In each chosen block the map of concept ``c`` at image token ``p`` is the
softmax over concepts of ``o_img[p] · o_c[c]``, the dot product of the attention outputs (before the
output projection, heads side by side); maps are summed over the chosen blocks and steps and upsampled as
DAAM maps are.

What a concept adds to a block is a few tokens: one query per concept against the image's keys, and the
block's text path (modulation, feed-forward) for those tokens; no second pass over the image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from ._probabilities import AttentionInputs
from ._words import PromptLayout, Span, StreamKeys

DEFAULT_BLOCKS = 4
"""Concept maps come from the last this many joint blocks by default: Flux.1's 15 to 18 of its 19
double-stream blocks, as the paper's results use."""

_attention = torch.nn.functional.scaled_dot_product_attention


class _ConceptCall(TorchFunctionMode):
    """While a block runs on the concept tokens: its attention call gets the image's keys and values
    appended to the concepts' own, and its output (the concepts' attention output) is kept. The call's
    last ``placeholders`` tokens (image tokens a block cannot do without) take no part: they are left out
    of the call and get a zero output."""

    def __init__(self, image_key: torch.Tensor, image_value: torch.Tensor, placeholders: int = 0) -> None:
        super().__init__()
        self.image_key, self.image_value, self.placeholders = image_key, image_value, placeholders
        self.output: torch.Tensor | None = None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is not _attention:
            return func(*args, **kwargs)
        named = dict(zip(("query", "key", "value", "attn_mask"), args, strict=False)) | kwargs
        if named.get("attn_mask") is not None:
            raise RuntimeError("the attention call of a concept block has a mask: concepts need none")
        query, key, value = (
            named[n][:, :, : named[n].shape[-2] - self.placeholders] for n in ("query", "key", "value")
        )
        named["query"] = query
        named["key"] = torch.cat([key, self.image_key.to(key.dtype)], dim=-2)
        named["value"] = torch.cat([value, self.image_value.to(value.dtype)], dim=-2)
        self.output = func(**named)
        return torch.nn.functional.pad(self.output, (0, 0, 0, self.placeholders))


def concept_layout(concepts: Sequence[str]) -> PromptLayout:
    """The concepts as a prompt of one word each: ``maps["cat"]`` is concept ``cat``'s map, at position
    ``k`` for the ``k``-th concept."""
    spans, start = [], 0
    for k, concept in enumerate(concepts):
        spans.append(Span(concept, start, start + len(concept), (k,), is_word=True))
        start += len(concept) + 2
    return PromptLayout(", ".join(concepts), tuple(spans), (StreamKeys("concepts", 0, len(concepts), None),))


def check_concepts(concepts: Any) -> list[str]:
    if isinstance(concepts, str) or not isinstance(concepts, Sequence) or not concepts:
        raise TypeError(
            f"concepts must be a non-empty list of strings, e.g. ['cat', 'sky'], not {concepts!r}"
        )
    bad = [c for c in concepts if not isinstance(c, str) or not re.search(r"\w", c)]
    if bad:
        raise ValueError(f"each concept must be a word or words, not {bad[0]!r}")
    lowered = [c.strip().lower() for c in concepts]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"concepts must differ (case aside): {list(concepts)!r}")
    return [c.strip() for c in concepts]


class ConceptStreams:
    """The concept tokens of one trace: their entry states, and the state of each batch of rows through
    the joint blocks of the denoiser call that runs.

    ``blocks`` are the joint blocks by name, in model order; ``chosen`` the names of those whose maps are
    summed; ``attention`` the name of each block's attention module (what its recorder reports)."""

    def __init__(self, backbone: Any, concepts: Sequence[str], layers: Sequence[str] | None) -> None:
        self.backbone = backbone
        self.concepts = check_concepts(concepts)
        self.layout = concept_layout(self.concepts)
        self.blocks = backbone.concept_blocks()
        names = list(self.blocks)
        if layers is None:
            self.chosen = names[-DEFAULT_BLOCKS:]
        else:
            prefixes = [layers] if isinstance(layers, str) else list(layers)
            self.chosen = [n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)]
            if not self.chosen:
                raise ValueError(
                    f"concept_layers={prefixes!r} matches no joint block; the blocks are: " + ", ".join(names)
                )
        self.attention = {f"{name}.attn": name for name in names}
        self.entry: torch.Tensor | None = None
        """``(1, concepts, features)``, made at the first step (``encode``)."""
        self.states: dict[int, torch.Tensor] = {}
        """Each kept row batch's concept tokens (by its first kept row) at the next block's input."""
        self.image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        """The running block's image keys, values and attention output ``(batch, heads, tokens, dim)``."""
        self.inputs: dict[str, Any] | None = None
        """The running block's keyword arguments."""

    def encode(self, positions_of: Callable[[str, torch.Tensor], list[int]]) -> None:
        """Each concept's tokens averaged at the first joint block's input, encoded as the running pipeline
        call encodes its prompt (``Backbone.concept_text``); ``positions_of(concept, text)``: the key
        positions of the concept's words in its encoded text."""
        pooled = []
        for concept in self.concepts:
            embeddings = self.backbone.concept_text(concept)
            positions = positions_of(concept, embeddings)
            if not positions:
                raise ValueError(f"the concept {concept!r} has no token in the text encoder's window")
            states = self.backbone.concept_entry(embeddings)
            pooled.append(states[0, positions].mean(0))
        self.entry = torch.stack(pooled)[None]

    def start_call(self) -> None:
        """A denoiser call begins: every batch of rows starts again from the concepts' entry states."""
        self.states.clear()
        self.image = self.inputs = None

    def saw(self, seen: AttentionInputs, image: slice) -> None:
        """The running block's real attention call: its image keys, values and output, kept for the block's
        end. ``image``: where the image tokens sit in the call's sequence."""
        if seen.value is None or seen.output is None:
            raise RuntimeError("the concept block's attention call was not seen whole")
        self.image = (seen.key[:, :, image], seen.value[:, :, image], seen.output[:, :, image])

    def run_block(self, name: str, rows: slice, first_row: int, batch: int) -> torch.Tensor | None:
        """Run the concept tokens of ``rows`` through block ``name``; return their maps ``(rows, image
        tokens, concepts)`` where the block is chosen, else None."""
        if self.image is None or self.inputs is None:
            raise RuntimeError(f"block {name} ran without the attention call a concept block needs")
        key, value, output = (t[rows] for t in self.image)
        states = self.states.get(first_row)
        if states is None:
            assert self.entry is not None
            states = self.entry.to(device=key.device, dtype=self.inputs["hidden_states"].dtype)
            states = states.expand(key.shape[0], -1, -1)
        kwargs = {k: _rows(v, rows, batch) for k, v in self.inputs.items()}
        placeholders = self.backbone.concept_placeholders
        kwargs["hidden_states"] = kwargs["hidden_states"][:, :placeholders]
        kwargs["encoder_hidden_states"] = states
        kwargs = self.backbone.concept_call(kwargs, len(self.concepts))
        call = _ConceptCall(key, value, placeholders)
        with torch.no_grad(), call:
            result = self.blocks[name](**kwargs)
        if call.output is None:
            raise RuntimeError(f"block {name} made no attention call for the concepts")
        following = self.backbone.concept_states(result)
        if following is not None:
            self.states[first_row] = following
        if name not in self.chosen:
            return None
        scores = torch.einsum("bhpd,bhcd->bpc", output.float(), call.output.float())
        return scores.softmax(-1)


def _rows(value: Any, rows: slice, batch: int) -> Any:
    """``value`` with its batch rows cut to ``rows`` (tensors whose first dimension is the batch, in
    tuples and lists too); anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value[rows] if value.ndim and value.shape[0] == batch else value
    if isinstance(value, (tuple, list)):
        return type(value)(_rows(v, rows, batch) for v in value)
    return value
