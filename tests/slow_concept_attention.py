"""ConceptAttention computed another way, to check the tracer's concept maps against.

The tracer runs each joint block a second time on the concept tokens alone (with no image tokens) and
hands the block's attention call the image's keys and values. Here, instead, each block is run whole on
``[concepts, image]``: the block's real image input and the concept tokens as its text, every token
attending to every other. The concept tokens' outputs are the same (they attend to the concepts and the
image either way; what the image does with the concepts here is thrown away), and so are the maps, read
from the block's own output projection (the image's attention output is what ``attn.to_out[0]`` gets in
the real, untouched generation). Nothing of ``daam_widget`` is used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

_attention = F.scaled_dot_product_attention


class _Outputs(torch.overrides.TorchFunctionMode):
    """Keeps the result of every ``scaled_dot_product_attention`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[torch.Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if func is _attention:
            self.results.append(result)
        return result


def record_blocks(pipe: Any, call: dict, generator: torch.Generator) -> tuple[list[dict], Any]:
    """An untraced generation; for every joint block call, its keyword arguments and the image attention
    output its ``attn.to_out[0]`` received ``(batch, image tokens, heads * dim)``, in call order."""
    transformer = pipe.transformer
    calls: list[dict] = []
    hooks = []
    for index, block in enumerate(transformer.transformer_blocks):

        def before(module: Any, args: tuple, kwargs: dict, index: int = index) -> None:
            calls.append({"block": index, "kwargs": dict(kwargs)})

        def projected(module: Any, args: tuple) -> None:
            calls[-1]["image_output"] = args[0].detach().clone()

        hooks.append(block.register_forward_pre_hook(before, with_kwargs=True))
        hooks.append(block.attn.to_out[0].register_forward_pre_hook(projected))
    try:
        out = pipe(generator=generator, **call)
    finally:
        for hook in hooks:
            hook.remove()
    return calls, out


def concept_entry(pipe: Any, concept: str, encode: dict, windows: dict[str, tuple[str, int]]) -> torch.Tensor:
    """The concept token: ``pipe.encode_prompt(prompt=concept, **encode)``'s first output through the
    transformer's text embedder, averaged over the positions of the concept's own token ids in each
    encoder's window. ``windows``: encoder name -> (its tokenizer's name, the key position of the window's
    first token)."""
    seen: dict[str, list[int]] = {}
    hooks = []
    for encoder in windows:

        def keep(module: Any, args: tuple, kwargs: dict, encoder: str = encoder) -> None:
            ids = args[0] if args else kwargs["input_ids"]
            seen.setdefault(encoder, ids[0].tolist())  # the prompt's call, not a negative one after it

        hooks.append(getattr(pipe, encoder).register_forward_pre_hook(keep, with_kwargs=True))
    try:
        with torch.no_grad():
            text = next(
                t for t in pipe.encode_prompt(prompt=concept, **encode) if t is not None and t.ndim == 3
            )
    finally:
        for hook in hooks:
            hook.remove()
    positions = []
    for encoder, (tokenizer_name, offset) in windows.items():
        tokenizer = getattr(pipe, tokenizer_name)
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor around it (Flux.2)
        window = seen[encoder]
        for written in (concept, " " + concept):  # after a template's space, a BPE word has its space
            own = tokenizer(written, add_special_tokens=False)["input_ids"]
            start = next((k for k in range(len(window)) if window[k : k + len(own)] == own), None)
            if start is not None:
                positions += [offset + start + j for j in range(len(own))]
                break
        else:
            raise AssertionError(f"{concept!r} is not in {encoder}'s window")
    transformer = pipe.transformer
    with torch.no_grad():
        if hasattr(transformer, "txt_in"):  # Qwen-Image
            states = transformer.txt_in(transformer.txt_norm(text))
        else:
            states = transformer.context_embedder(text)
    return states[0, sorted(set(positions))].mean(0)


def concept_maps(
    pipe: Any,
    calls: list[dict],
    entry: torch.Tensor,
    chosen: set[int],
    joint: str,
) -> torch.Tensor:
    """The concept maps ``(concepts, image tokens)`` summed over the ``chosen`` blocks of every step, for
    row 0, from ``record_blocks``'s calls. ``entry``: ``(1, concepts, features)``, the concept tokens at
    the first block. ``joint``: how the family's block call takes the concepts as its text
    (``"text first"``: Flux's layout, ``"image first"``: SD3's, ``"qwen"``)."""
    total = None
    concepts = entry.shape[1]
    blocks = pipe.transformer.transformer_blocks
    states = entry
    for record in calls:
        if record["block"] == 0:
            states = entry
        kwargs = dict(record["kwargs"])
        image = kwargs["hidden_states"]
        kwargs["encoder_hidden_states"] = states
        for mask in ("attention_mask", "encoder_hidden_states_mask"):
            if mask in kwargs:
                kwargs[mask] = None
        rotary = kwargs.get("image_rotary_emb")
        if joint == "text first" and rotary is not None:
            text_length = record["kwargs"]["encoder_hidden_states"].shape[1]
            kwargs["image_rotary_emb"] = tuple(torch.cat([r[:concepts], r[text_length:]]) for r in rotary)
        if joint == "qwen":
            image_frequencies, text_frequencies = rotary
            kwargs["image_rotary_emb"] = (image_frequencies, text_frequencies[:concepts])
        watch = _Outputs()
        with torch.no_grad(), watch:
            result = blocks[record["block"]](**kwargs)
        (output,) = watch.results
        tokens = output[:, :, image.shape[1] :] if joint == "image first" else output[:, :, :concepts]
        concept_output = tokens.transpose(1, 2).flatten(2)  # heads side by side, as to_out[0] gets them
        if record["block"] in chosen:
            scores = record["image_output"][:1].float() @ concept_output.float().transpose(1, 2)
            maps = scores.softmax(-1)[0].T
            total = maps if total is None else total + maps
        if result[0] is not None:
            states = result[0]
    assert total is not None
    return total
