"""Token positions <-> words of the prompt text.

The UNet's cross-attention keys are token positions in the text encoder's window: ``<start>``, the prompt's
tokens, ``<end>``, then padding. DAAM speaks of words, so this module finds, for each word of the prompt
text, the positions of its sub-word tokens, from the tokenizer's character offsets. Words are maximal runs
of letters and digits (with inner apostrophes: "don't"); runs of other visible characters are punctuation
spans, kept in order for display but not addressable as words.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SPAN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]+|_+")


@dataclass(frozen=True)
class Span:
    """A word or punctuation mark of the prompt text.

    ``tokens`` are the positions of its tokens in the encoder window (``<start>`` is position 0).
    ``available`` is False when the tokenizer's window cut the span off, in whole or in part.
    """

    text: str
    start: int
    end: int
    tokens: tuple[int, ...]
    is_word: bool
    available: bool = True


@dataclass(frozen=True)
class PromptLayout:
    """What each position of the encoder window holds for one prompt.

    ``num_positions`` is the window length (77 for CLIP); ``end_position`` the position of ``<end>``
    (``None`` when the ids are unknown). ``spans`` is empty when only embeddings were given.
    """

    text: str
    spans: tuple[Span, ...]
    num_positions: int
    end_position: int | None

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.spans if s.is_word)

    @property
    def word_spans(self) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.is_word)

    @property
    def used_positions(self) -> tuple[int, ...]:
        """``<start>``, the prompt's tokens and ``<end>``; every position when the ids are unknown."""
        last = self.num_positions - 1 if self.end_position is None else self.end_position
        return tuple(range(last + 1))

    def find(self, word: str, occurrence: int | None = None) -> Span:
        """The span of ``word`` (case-insensitive); ``occurrence`` picks one of a repeated word."""
        if not self.spans:
            raise KeyError(
                "these maps have no words: the pipeline was given prompt_embeds, not a prompt. "
                "Pass prompt=... to heat_maps(), or look maps up by token position with maps.token(k)"
            )
        matches = [s for s in self.word_spans if s.text.casefold() == word.casefold()]
        if not matches:
            raise KeyError(f"{word!r} is not a word of the prompt; words are: {', '.join(self.words)}")
        if occurrence is None:
            if len(matches) > 1:
                raise KeyError(
                    f"{word!r} occurs {len(matches)} times in the prompt; pick one with "
                    f"maps.word({word!r}, occurrence) where occurrence is 0..{len(matches) - 1}"
                )
            occurrence = 0
        if not 0 <= occurrence < len(matches):
            raise KeyError(
                f"{word!r} occurs {len(matches)} time(s); occurrence must be 0..{len(matches) - 1}, "
                f"not {occurrence}"
            )
        span = matches[occurrence]
        if not span.available:
            raise KeyError(
                f"{word!r} was cut off: the tokenizer keeps {self.num_positions - 2} tokens of a prompt "
                "and this word lies past them; shorten the prompt to map it"
            )
        return span

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "num_positions": self.num_positions,
            "end_position": self.end_position,
            "spans": [[s.text, s.start, s.end, list(s.tokens), s.is_word, s.available] for s in self.spans],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromptLayout:
        spans = tuple(Span(t, a, b, tuple(tok), w, av) for t, a, b, tok, w, av in data["spans"])
        return cls(data["text"], spans, data["num_positions"], data["end_position"])


def layout_from_text(text: str, tokenizer: Any, input_ids: Sequence[int] | None = None) -> PromptLayout:
    """Align ``text`` with the tokenizer's window; check it against ``input_ids`` the encoder saw, if given.

    Raises ValueError when ``text`` does not tokenize to ``input_ids``: the maps would then be
    attributed to the wrong words.
    """
    window = int(tokenizer.model_max_length)
    encoding = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    content_ids = list(encoding["input_ids"])
    offsets = list(encoding["offset_mapping"])
    kept = window - 2
    if input_ids is not None:
        seen = [int(i) for i in input_ids[1 : 1 + min(len(content_ids), kept)]]
        if seen != content_ids[:kept]:
            raise ValueError(
                f"the prompt {text!r} is not the text the pipeline encoded; it encoded "
                f"{tokenizer.decode(seen)!r}. Pass the prompt of this image (or none)"
            )
    if len(content_ids) > kept:
        warnings.warn(
            f"the prompt has {len(content_ids)} tokens but the tokenizer keeps {kept}; "
            f"words past the limit are marked unavailable: {text[offsets[kept][0] :]!r}",
            stacklevel=3,
        )
    spans = []
    for match in _SPAN.finditer(text):
        start, end = match.span()
        tokens = tuple(
            j + 1 for j, (a, b) in enumerate(offsets) if a < end and b > start and (a, b) != (0, 0)
        )
        spans.append(
            Span(
                text=match.group(),
                start=start,
                end=end,
                tokens=tokens,
                is_word=_WORD.fullmatch(match.group()) is not None,
                available=bool(tokens) and max(tokens) <= kept,
            )
        )
    return PromptLayout(text, tuple(spans), window, min(len(content_ids), kept) + 1)


def layout_from_ids(input_ids: Sequence[int], tokenizer: Any) -> PromptLayout:
    """The layout of ids whose text is unknown: the text is decoded (lower case, as the tokenizer saw it)."""
    ids = [int(i) for i in input_ids]
    end = ids.index(tokenizer.eos_token_id, 1) if tokenizer.eos_token_id in ids[1:] else len(ids) - 1
    if end == len(ids) - 1:
        warnings.warn(
            f"the prompt fills the tokenizer's {len(ids)}-token window, so words past it may have been cut; "
            "pass prompt=... to heat_maps() to know which",
            stacklevel=3,
        )
    text = tokenizer.decode(ids[1:end], skip_special_tokens=True)
    return layout_from_text(text, tokenizer, ids)


def layout_without_ids(num_positions: int) -> PromptLayout:
    """The layout when only embeddings were given: positions, no words."""
    return PromptLayout("", (), num_positions, None)
