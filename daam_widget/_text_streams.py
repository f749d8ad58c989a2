"""How a family's prompt text becomes text keys: one ``TextStream`` per tokenizer window among the keys.

A denoiser's text keys come from one or more text encoders. For each, the family says which pipeline
attributes hold the encoder and tokenizer, where the stream's keys start among the denoiser's text
positions, what text the pipeline hands the tokenizer (``Template``: a chat template or instruction
around the prompt, lower-casing), and which tokenizer-window positions reach the keys (``KeyRule``: all
of them, Sana's ``<bos>`` and last ``n - 1``, Qwen-Image's valid tokens after a 34-token template). Shared
code applies these rules and never names a family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

KeyRule = Callable[[Sequence[int], int], list["int | None"]]
"""``(window_mask, num_keys) -> positions``: for each of the stream's ``num_keys`` keys, the position in
the tokenizer window whose token it holds, or None for a key that holds no token (padding the pipeline
appended after selecting tokens). ``window_mask`` is the tokenizer's attention mask (1: a token)."""


def every_position(mask: Sequence[int], num_keys: int) -> list[int | None]:
    """The window is the keys, padding included (CLIP, T5)."""
    return list(range(num_keys))


def first_and_last(mask: Sequence[int], num_keys: int) -> list[int | None]:
    """The window's first position and its last ``num_keys - 1`` (Sana keeps ``<bos>`` and the end of a
    window that starts with its instruction)."""
    window = len(mask)
    if num_keys >= window:
        return list(range(num_keys))
    return [0, *range(window - num_keys + 1, window)]


def from_position(start: int) -> KeyRule:
    """The window from position ``start`` on, padding included (Kandinsky 5 drops its template's first 40
    positions)."""

    def rule(mask: Sequence[int], num_keys: int) -> list[int | None]:
        return list(range(start, start + num_keys))

    return rule


def valid_from(start: int) -> KeyRule:
    """The window's tokens (mask 1) from position ``start`` on, then keys without a token: pipelines that
    drop a template's first ``start`` tokens and re-pad each prompt (Qwen-Image: 34; Z-Image: 0)."""

    def rule(mask: Sequence[int], num_keys: int) -> list[int | None]:
        tokens = [p for p, m in enumerate(mask) if m and p >= start][:num_keys]
        return [*tokens, *[None] * (num_keys - len(tokens))]

    return rule


@dataclass(frozen=True)
class Template:
    """The text a pipeline gives the tokenizer for a prompt: ``prefix + prompt + suffix``, the prompt
    lower-cased and stripped first when ``lowercase`` (PixArt, Sana); ``special_tokens``: whether the
    tokenizer adds its own (a chat template writes them itself)."""

    prefix: str = ""
    suffix: str = ""
    lowercase: bool = False
    special_tokens: bool = True
    padding_side: str | None = None
    """Where the pipeline pads the window when the tokenizer's own side is not it (CogView4: left)."""
    padded_suffix: bool = False
    """The pipeline pads ``prefix + prompt`` and appends the suffix after the padding (Krea-2)."""

    def apply(self, prompt: str) -> tuple[str, int]:
        """The tokenizer's text (without a suffix that comes after the padding), and what to add to one of
        its character indices to index ``prompt``."""
        body = prompt.lower().strip() if self.lowercase else prompt
        lead = len(prompt) - len(prompt.lstrip()) if self.lowercase else 0
        return self.prefix + body + ("" if self.padded_suffix else self.suffix), lead - len(self.prefix)

    @classmethod
    def user_turn(cls, tokenizer: Any, lead: str = "", special_tokens: bool = True, **chat: Any) -> Template:
        """The template of a tokenizer's chat template around one user message, ``lead`` and the prompt,
        and the generation prompt after it; ``chat``: the template's own options (``enable_thinking``)."""

        def render(prompt: str) -> str:
            messages = [{"role": "user", "content": lead + prompt}]
            return str(
                tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **chat)
            )

        return cls.around(render, special_tokens=special_tokens)

    @classmethod
    def around(cls, render: Callable[[str], str], **options: Any) -> Template:
        """The template of ``render`` (a pipeline's chat template applied to one user message), found by
        rendering a marker in the prompt's place."""
        marker = "\x00daam\x00"
        prefix, found, suffix = render(marker).partition(marker)
        if not found:
            raise ValueError("the chat template does not contain the prompt it was given")
        return cls(prefix, suffix, **options)


@dataclass(frozen=True)
class TextStream:
    """One tokenizer window among the denoiser's text keys.

    ``encoder`` and ``tokenizer`` are pipeline attributes. ``offset`` is the stream's first key position;
    ``length`` its number of keys, None for "to the end of the denoiser's text".
    """

    name: str
    encoder: str = "text_encoder"
    tokenizer: str = "tokenizer"
    offset: int = 0
    length: int | None = None
    template: Template = Template()
    keys: KeyRule = field(default=every_position)
    negative_template: Template | None = None
    """The negative prompt's template where the pipeline encodes it otherwise (Sana and Lumina 2 put
    their instruction or system prompt before the prompt only)."""

    def for_negative(self) -> TextStream:
        """This stream as the negative prompt is encoded."""
        if self.negative_template is None:
            return self
        return replace(self, template=self.negative_template)

    def num_keys(self, text_length: int) -> int:
        """The stream's keys in a denoiser text of ``text_length`` positions."""
        return self.length if self.length is not None else text_length - self.offset
