"""Which token ids made which text keys: text-encoder outputs matched by value to the denoiser's text.

Forward hooks on the text encoders record each call's ids, attention mask and the outputs a pipeline may
pass on (the last hidden state, every hidden state, CLIP's final norm of each). The denoiser's text is
matched against them by value, through the stream's key rule (which window positions reach the keys), so
positive and negative prompts are told apart whatever the pipeline was given (prompts, ``prompt_embeds``,
or a mix), and an encoder whose output is not used (SD3 without T5) gives no words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._text_streams import TextStream
from ._words import TokenWindow


@dataclass
class EncoderCall:
    """One text-encoder call: its ids and mask ``(prompts, window)`` and outputs ``(prompts, window,
    features)`` that may be the denoiser's text."""

    encoder: str
    ids: torch.Tensor
    mask: torch.Tensor
    candidates: list[torch.Tensor]

    def window(self, row: int) -> TokenWindow:
        return TokenWindow(tuple(self.ids[row].tolist()), tuple(self.mask[row].tolist()))


def encoder_hook(name: str, encoder: torch.nn.Module, pending: list[EncoderCall]) -> Callable[..., None]:
    """A forward hook (``with_kwargs=True``) that appends each call of ``encoder`` to ``pending``."""
    final_norm = getattr(getattr(encoder, "text_model", None), "final_layer_norm", None)

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        ids = args[0] if args else kwargs.get("input_ids")
        if ids is None:
            return
        mask = kwargs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.detach().long()
        hidden_states = getattr(output, "hidden_states", None) or ()
        outputs = [output[0], *hidden_states]
        candidates = [t for t in outputs if isinstance(t, torch.Tensor) and t.ndim == 3]
        if candidates and candidates[0].shape[:2] == ids.shape[::-1] != ids.shape:  # sequence first (ChatGLM)
            candidates = [t.transpose(0, 1) for t in candidates]
        if final_norm is not None and hidden_states:
            with torch.no_grad():
                candidates += [final_norm(h) for h in hidden_states[:-1]]
        pending.append(EncoderCall(name, ids.detach().cpu(), mask.cpu(), [c.detach() for c in candidates]))

    return hook


def window_behind(
    text: torch.Tensor, local: int, stream: TextStream, calls: list[EncoderCall]
) -> TokenWindow | None:
    """The window behind row ``local`` of ``text`` ``(rows, keys, features)`` in ``stream``'s keys, if one
    of ``calls`` made it: its keys equal the encoder's output at the positions the key rule names (in
    their first features: SDXL and Flux.2 put several outputs side by side), where the window has tokens.
    The encoder row is looked for where ``num_images_per_prompt`` repeats put it, then in every row (a
    pipeline may encode the negative and positive prompts in one batch)."""
    keys = stream.num_keys(text.shape[1])
    part = text[local, stream.offset : stream.offset + keys]
    for call in calls:
        if call.encoder != stream.encoder:
            continue
        rows = list(range(call.ids.shape[0]))
        if text.shape[0] % len(rows) == 0:
            expected_row = local // (text.shape[0] // len(rows))
            rows.remove(expected_row)
            rows.insert(0, expected_row)
        for row in rows:
            if _made_by(part, call, row, stream, keys):
                return call.window(row)
    return None


def _made_by(part: torch.Tensor, call: EncoderCall, row: int, stream: TextStream, keys: int) -> bool:
    """Whether ``part`` ``(keys, features)`` is an output of ``call``'s row ``row`` at the stream's keys."""
    mask = call.mask[row].tolist()
    positions = stream.keys(mask, keys)
    if any(p is not None and p >= call.ids.shape[1] for p in positions):
        return False
    # padding is compared only where it is a token: pipelines may zero it (AuraFlow)
    picked = [k for k, p in enumerate(positions) if p is not None and mask[p]]
    if not picked:  # no token among the keys (an empty prompt): nothing to tell the windows apart by
        return False
    index = torch.tensor([positions[k] for k in picked], dtype=torch.long)
    for output in call.candidates:
        if output.shape[-1] > part.shape[-1] or output.shape[1] != call.ids.shape[1]:
            continue
        expected = output[row, index.to(output.device)].to(part.dtype).float()
        seen = part[picked, : output.shape[-1]].float()
        if torch.allclose(expected, seen, rtol=1e-3, atol=1e-3 * float(seen.abs().max())):
            return True
    return False
