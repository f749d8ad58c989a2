"""Token positions <-> words of the prompt text.

A denoiser's text keys are token positions of one or more tokenizer windows: CLIP's ``<start>``, the
prompt's tokens, ``<end>`` and padding; T5's tokens, ``</s>`` and padding (no start token); Gemma's
``<bos>`` and tokens. SD3 puts a CLIP window and a T5 window one after the other: each is a *stream* of
the keys. DAAM speaks of words, so this module finds, for each word of the prompt text, the key
positions of its sub-word tokens, from the tokenizer's own character offsets, whatever its special tokens.
Words are maximal runs of letters and digits (with inner apostrophes: "don't"); runs of other visible
characters are punctuation spans, kept in order for display but not addressable as words.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SPAN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]+|_+")


@dataclass(frozen=True)
class Span:
    """A word or punctuation mark of the prompt text.

    ``tokens`` are the key positions of its tokens (CLIP's ``<start>`` is position 0; in a second stream
    positions continue after the first). ``available`` is False when a tokenizer's window cut the span
    off, in whole or in part.
    """

    text: str
    start: int
    end: int
    tokens: tuple[int, ...]
    is_word: bool
    available: bool = True


@dataclass(frozen=True)
class Stream:
    """One tokenizer window among the keys: positions ``offset .. offset + num_positions - 1``.

    ``end_position`` is the window's last non-padding position (``None`` when the ids are unknown).
    """

    name: str
    offset: int
    num_positions: int
    end_position: int | None

    @property
    def used_positions(self) -> tuple[int, ...]:
        last = self.num_positions - 1 if self.end_position is None else self.end_position
        return tuple(range(self.offset, self.offset + last + 1))


@dataclass(frozen=True)
class PromptLayout:
    """What each key position holds for one prompt.

    ``spans`` is empty when only embeddings were given. ``streams`` lists the tokenizer windows; most
    models have one, SD3 has CLIP's and T5's.
    """

    text: str
    spans: tuple[Span, ...]
    streams: tuple[Stream, ...]

    @property
    def num_positions(self) -> int:
        return sum(s.num_positions for s in self.streams)

    @property
    def end_position(self) -> int | None:
        """The last non-padding position of the first stream (``<end>`` for CLIP)."""
        return self.streams[0].end_position

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.spans if s.is_word)

    @property
    def word_spans(self) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.is_word)

    @property
    def used_positions(self) -> tuple[int, ...]:
        """Every stream's special and prompt tokens, padding dropped; every position when ids are unknown."""
        return tuple(p for s in self.streams for p in s.used_positions)

    def stream(self, name: str) -> PromptLayout:
        """This layout restricted to one stream: its positions and the spans' tokens in it."""
        chosen = [s for s in self.streams if s.name == name]
        if not chosen:
            raise ValueError(
                f"stream={name!r} is not one of these maps' streams: "
                + ", ".join(repr(s.name) for s in self.streams)
            )
        positions = set(chosen[0].used_positions)
        spans = tuple(replace(s, tokens=tuple(t for t in s.tokens if t in positions)) for s in self.spans)
        return PromptLayout(self.text, spans, tuple(chosen))

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
                f"{word!r} was cut off: it lies past the tokens the text encoder's window keeps "
                f"({self.num_positions} positions); shorten the prompt to map it"
            )
        return span

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "spans": [[s.text, s.start, s.end, list(s.tokens), s.is_word, s.available] for s in self.spans],
            "streams": [[s.name, s.offset, s.num_positions, s.end_position] for s in self.streams],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromptLayout:
        spans = tuple(Span(t, a, b, tuple(tok), w, av) for t, a, b, tok, w, av in data["spans"])
        if "streams" in data:
            streams = tuple(Stream(*s) for s in data["streams"])
        else:  # files written before streams existed: one window
            streams = (Stream("text", 0, data["num_positions"], data["end_position"]),)
        return cls(data["text"], spans, streams)


@dataclass(frozen=True)
class TextEncoding:
    """How a pipeline turns a prompt into one stream of keys, beyond the tokenizer itself.

    ``lowercase``: the pipeline lower-cases and strips the prompt first (PixArt, Sana). ``prefix``: text
    it puts before the prompt (Sana's instruction). ``num_keys``: how many window positions reach the
    keys when fewer than the window (Sana keeps ``<bos>`` and the window's last ``num_keys - 1``).
    """

    name: str = "text"
    offset: int = 0
    lowercase: bool = False
    prefix: str = ""
    num_keys: int | None = None


def layout_from_text(
    text: str,
    tokenizer: Any,
    input_ids: Sequence[int] | None = None,
    encoding: TextEncoding = TextEncoding(),
    window: int | None = None,
) -> PromptLayout:
    """Align ``text`` with the tokenizer's window; check it against ``input_ids`` the encoder saw, if given.

    The window is tokenized as the pipelines do (padded to ``window``: ``len(input_ids)``, or the
    tokenizer's ``model_max_length``; truncated, special tokens added), with character offsets. Raises
    ValueError when ``text`` does not tokenize to ``input_ids``: the maps would then go to the wrong words.
    """
    if window is None:
        window = len(input_ids) if input_ids is not None else int(tokenizer.model_max_length)
    prompt = text.lower().strip() if encoding.lowercase else text
    lead = len(text) - len(text.lstrip()) if encoding.lowercase else 0
    shift = lead - len(encoding.prefix)  # encoded character -> text character
    encoded = encoding.prefix + prompt
    call = dict(add_special_tokens=True, return_offsets_mapping=True, verbose=False)
    windowed = tokenizer(encoded, padding="max_length", max_length=window, truncation=True, **call)
    full = tokenizer(encoded, truncation=False, **call)
    ids = list(windowed["input_ids"])
    if input_ids is not None and [int(i) for i in input_ids] != ids:
        seen = [int(i) for i in input_ids]
        raise ValueError(
            f"the prompt {text!r} is not the text the pipeline encoded; it encoded "
            f"{tokenizer.decode(seen, skip_special_tokens=True)!r}. Pass the prompt of this image (or none)"
        )
    keys = _key_positions(window, encoding.num_keys)
    kept = [_chars(windowed["offset_mapping"][p], shift) for p in keys]
    content = [c for c in (_chars(o, shift) for o in full["offset_mapping"]) if c is not None]
    kept_set = set(kept)
    cut = [c for c in content if c not in kept_set]
    if cut:
        specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        warnings.warn(
            f"the prompt has {len(content)} tokens but the tokenizer keeps {window - specials}; "
            f"words past the limit are marked unavailable: {text[max(cut[0][0], 0) :]!r}",
            stacklevel=3,
        )
    spans = []
    for match in _SPAN.finditer(text):
        start, end = match.span()
        tokens = tuple(k for k, c in enumerate(kept) if c is not None and c[0] < end and c[1] > start)
        needed = sum(1 for a, b in content if a < end and b > start)
        spans.append(
            Span(
                text=match.group(),
                start=start,
                end=end,
                tokens=tuple(encoding.offset + k for k in tokens),
                is_word=_WORD.fullmatch(match.group()) is not None,
                available=bool(tokens) and len(tokens) == needed,
            )
        )
    mask = windowed["attention_mask"]
    end_position = max(k for k, p in enumerate(keys) if mask[p])
    stream = Stream(encoding.name, encoding.offset, len(keys), end_position)
    return PromptLayout(text, tuple(spans), (stream,))


def _key_positions(window: int, num_keys: int | None) -> list[int]:
    if num_keys is None or num_keys >= window:
        return list(range(window))
    return [0, *range(window - num_keys + 1, window)]


def _chars(offset: Sequence[int], shift: int) -> tuple[int, int] | None:
    """A token's character range in the user's text, or None for special, padding and prefix tokens."""
    a, b = int(offset[0]), int(offset[1])
    if a == b or b + shift <= 0:
        return None
    return a + shift, b + shift


def decoded_text(input_ids: Sequence[int], tokenizer: Any, encoding: TextEncoding = TextEncoding()) -> str:
    """The prompt text behind ids (lower case where the tokenizer lower-cases), without the prefix."""
    ids = [int(i) for i in input_ids]
    start = 1 if ids and ids[0] == tokenizer.bos_token_id else 0
    ends = (tokenizer.eos_token_id, tokenizer.pad_token_id)
    stops = [i for i in ends if i is not None and i in ids[start:]]
    end = min(ids.index(i, start) for i in stops) if stops else len(ids)
    text = tokenizer.decode(ids[start:end], skip_special_tokens=True)
    if encoding.prefix and text.startswith(encoding.prefix):
        text = text[len(encoding.prefix) :]
    return text.strip() if encoding.lowercase else text


def layout_from_ids(
    input_ids: Sequence[int], tokenizer: Any, encoding: TextEncoding = TextEncoding()
) -> PromptLayout:
    """The layout of ids whose text is unknown: the text is decoded (lower case, as the tokenizer saw it)."""
    return align_streams([(input_ids, tokenizer, encoding)], None)


Window = tuple["Sequence[int] | None", Any, TextEncoding]
"""One stream's ids (None if unknown), tokenizer and encoding, for ``align_streams``."""


def align_streams(
    windows: Sequence[Window], prompt: str | None, num_keys: Sequence[int] = ()
) -> PromptLayout:
    """One layout of every stream's window for the same prompt.

    With ``prompt`` each window is aligned with it (and checked against its ids). Without it, the text is
    decoded from a window's ids: the first decoded text that every window's tokenizer turns into that
    window's ids gives words in all of them; failing that, words come from the first window with ids
    and the others keep their positions without words (their tokenizers saw the text differently).
    ``num_keys`` gives each window's number of key positions where ids are unknown.
    """
    known = [(ids, enc) for ids, _, enc in windows if ids is not None]
    if prompt is not None or not known:
        return combine([_aligned(prompt, w, num_keys, i) for i, w in enumerate(windows)])
    layout = _decoded(windows, num_keys)
    ids, encoding = known[0]
    stream = next(s for s in layout.streams if s.name == encoding.name)
    if stream.end_position == stream.num_positions - 1:
        warnings.warn(
            f"the prompt fills the tokenizer's {len(ids)}-token window, so words past it may have been "
            "cut; pass prompt=... to heat_maps() to know which",
            stacklevel=3,
        )
    return layout


def _decoded(windows: Sequence[Window], num_keys: Sequence[int]) -> PromptLayout:
    candidates = [decoded_text(ids, tok, enc) for ids, tok, enc in windows if ids is not None]
    for text in dict.fromkeys(candidates):
        try:
            return combine([_aligned(text, w, num_keys, i) for i, w in enumerate(windows)])
        except ValueError:
            continue
    first = next(i for i, w in enumerate(windows) if w[0] is not None)
    try:
        return combine(
            [
                _aligned(candidates[0], w, num_keys, i) if i == first else _unworded(w, num_keys, i)
                for i, w in enumerate(windows)
            ]
        )
    except ValueError:
        warnings.warn(
            "the prompt's words could not be read back from the token ids (the pipeline changed the "
            "text before tokenizing it); maps are by token position: pass prompt=... to heat_maps()",
            stacklevel=4,
        )
        return combine([_unworded(w, num_keys, i) for i, w in enumerate(windows)])


def _aligned(text: str | None, window: Window, num_keys: Sequence[int], index: int) -> PromptLayout:
    ids, tokenizer, encoding = window
    if ids is None and (text is None or tokenizer is None):
        return _unworded(window, num_keys, index)
    length = num_keys[index] if index < len(num_keys) else None
    assert text is not None
    return layout_from_text(text, tokenizer, ids, encoding, window=None if ids is not None else length)


def _unworded(window: Window, num_keys: Sequence[int], index: int) -> PromptLayout:
    """A window's positions without words: padding dropped when the ids are known."""
    ids, tokenizer, encoding = window
    if ids is None:
        return layout_without_ids(num_keys[index], encoding)
    keys = [int(ids[p]) for p in _key_positions(len(ids), encoding.num_keys)]
    pad = getattr(tokenizer, "pad_token_id", None)
    end = max((k for k, i in enumerate(keys) if i != pad), default=len(keys) - 1)
    return PromptLayout("", (), (Stream(encoding.name, encoding.offset, len(keys), end),))


def layout_without_ids(num_positions: int, encoding: TextEncoding = TextEncoding()) -> PromptLayout:
    """The layout when only embeddings were given: positions, no words."""
    return PromptLayout("", (), (Stream(encoding.name, encoding.offset, num_positions, None),))


def combine(layouts: Sequence[PromptLayout]) -> PromptLayout:
    """One layout of several streams' layouts of the same text: each span's tokens in every stream."""
    with_words = [layout for layout in layouts if layout.spans]
    first = with_words[0] if with_words else layouts[0]
    spans = []
    for i, span in enumerate(first.spans):
        parts = [layout.spans[i] for layout in with_words]
        spans.append(
            replace(
                span,
                tokens=tuple(t for p in parts for t in p.tokens),
                available=all(p.available for p in parts),
            )
        )
    return PromptLayout(first.text, tuple(spans), tuple(s for layout in layouts for s in layout.streams))
