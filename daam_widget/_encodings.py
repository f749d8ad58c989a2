"""Which token ids made which text keys: text-encoder outputs matched by value to the denoiser's text.

Forward hooks on the text encoders record each call's ids and the outputs a pipeline may pass on (the
last hidden state, every hidden state, CLIP's final norm of each). The denoiser's text is matched against
them by value, so positive and negative prompts are told apart whatever the pipeline was given (prompts,
``prompt_embeds``, or a mix), and an encoder whose output is not used (SD3 without T5) gives no words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._backbones import TextStream


@dataclass
class Encoding:
    """One text-encoder call: its ids ``(prompts, tokens)`` and outputs that may be the denoiser's text."""

    encoder: str
    ids: torch.Tensor
    candidates: list[torch.Tensor]


def encoder_hook(name: str, encoder: torch.nn.Module, pending: list[Encoding]) -> Callable[..., None]:
    """A forward hook (``with_kwargs=True``) that appends each call of ``encoder`` to ``pending``."""
    final_norm = getattr(getattr(encoder, "text_model", None), "final_layer_norm", None)

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        ids = args[0] if args else kwargs.get("input_ids")
        if ids is None:
            return
        hidden_states = getattr(output, "hidden_states", None) or ()
        outputs = [output[0], *hidden_states]
        candidates = [t for t in outputs if isinstance(t, torch.Tensor) and t.ndim == 3]
        if final_norm is not None and hidden_states:
            with torch.no_grad():
                candidates += [final_norm(h) for h in hidden_states[:-1]]
        pending.append(Encoding(name, ids.detach().cpu(), [c.detach() for c in candidates]))

    return hook


def ids_behind(
    text: torch.Tensor, local: int, stream: TextStream, encodings: list[Encoding]
) -> list[int] | None:
    """The ids behind row ``local`` of ``text`` ``(rows, keys, features)`` in ``stream``'s key positions,
    if one of ``encodings`` made them; ``num_images_per_prompt`` repeats are allowed for."""
    start = stream.encoding.offset
    stop = start + stream.length if stream.length is not None else text.shape[1]
    part = text[:, start:stop]
    for encoding in encodings:
        if encoding.encoder != stream.encoder or part.shape[0] % encoding.ids.shape[0]:
            continue
        repeat = part.shape[0] // encoding.ids.shape[0]
        for output in encoding.candidates:
            candidate = _keys_of(output, part.shape[1])
            if candidate is None or candidate.shape[-1] > part.shape[-1]:
                continue
            expected = candidate.repeat_interleave(repeat, dim=0).to(part.dtype).float()
            seen = part[..., : candidate.shape[-1]].float()
            if torch.allclose(expected, seen, rtol=1e-3, atol=1e-3 * float(seen.abs().max())):
                return encoding.ids[local // repeat].tolist()
    return None


def _keys_of(candidate: torch.Tensor, keys: int) -> torch.Tensor | None:
    """The encoder positions that reach ``keys`` key positions: all of them, or (Sana) the first and
    the last ``keys - 1``."""
    if candidate.shape[1] == keys:
        return candidate
    if candidate.shape[1] > keys:
        return torch.cat([candidate[:, :1], candidate[:, candidate.shape[1] - keys + 1 :]], dim=1)
    return None
