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

import bisect
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ._text_streams import TextStream, every_position

STOP_WORDS = frozenset(
    """a an the and or but nor so yet of on in at to for from with without by as into onto over under above
    below near beside behind between among through across along around against upon off up down out is are was
    were be been being am it its this that these those there here some any each every all both either neither
    no not very just than then too also""".split()
)
"""English function words: what renormalising over content words leaves out (articles, conjunctions,
prepositions, forms of "be", demonstratives, quantifiers)."""

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
class StreamKeys:
    """Where one stream's keys sit in a prompt's layout: positions ``offset .. offset + num_positions - 1``.

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
    streams: tuple[StreamKeys, ...]

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
            streams = tuple(StreamKeys(*s) for s in data["streams"])
        else:  # files written before streams existed: one window
            streams = (StreamKeys("text", 0, data["num_positions"], data["end_position"]),)
        return cls(data["text"], spans, streams)


@dataclass(frozen=True)
class TokenWindow:
    """The ids a text encoder saw for one prompt, and its attention mask (1: a token, 0: padding)."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]


@dataclass(frozen=True)
class StreamText:
    """What is known of one stream's text for one prompt: the family's rules, the tokenizer (None if the
    pipeline has none), the window the encoder saw (None if only embeddings were given), and how many
    keys the stream has in the denoiser."""

    stream: TextStream
    tokenizer: Any
    window: TokenWindow | None
    num_keys: int


DEFAULT_STREAM = TextStream("text")


def layout_from_text(
    text: str,
    tokenizer: Any,
    input_ids: Sequence[int] | None = None,
    stream: TextStream = DEFAULT_STREAM,
    window: int | None = None,
    num_keys: int | None = None,
) -> PromptLayout:
    """Align ``text`` with the tokenizer's window; check it against ``input_ids`` the encoder saw, if given.

    The window is tokenized as the pipeline does (the stream's template around the text; padded to
    ``window``: ``len(input_ids)``, or the tokenizer's ``model_max_length``; truncated), with character
    offsets; the stream's key rule says which window positions are its ``num_keys`` keys (default: the
    window). Raises ValueError when ``text`` does not tokenize to ``input_ids``: the maps would then go to
    the wrong words.
    """
    if window is None:
        window = len(input_ids) if input_ids is not None else int(tokenizer.model_max_length)
    template = stream.template
    encoded, shift = template.apply(text)
    fast = bool(getattr(tokenizer, "is_fast", False))
    call = dict(add_special_tokens=template.special_tokens, return_offsets_mapping=fast, verbose=False)
    side = {"padding_side": template.padding_side} if template.padding_side else {}
    tail = tokenizer(template.suffix, add_special_tokens=False)["input_ids"] if template.padded_suffix else []
    windowed = dict(
        tokenizer(
            encoded, padding="max_length", max_length=window - len(tail), truncation=True, **call, **side
        )
    )
    if tail:  # the suffix after the padding: tokens, but not the prompt's
        windowed["input_ids"] = [*windowed["input_ids"], *tail]
        windowed["attention_mask"] = [*windowed["attention_mask"], *[1] * len(tail)]
        if fast:
            windowed["offset_mapping"] = [*windowed["offset_mapping"], *[(0, 0)] * len(tail)]
    full = tokenizer(encoded, truncation=False, **call)
    ids = list(windowed["input_ids"])
    if input_ids is not None and [int(i) for i in input_ids] != ids:
        seen = TokenWindow(tuple(int(i) for i in input_ids), tuple(1 for _ in input_ids))
        raise ValueError(
            f"the prompt {text!r} is not the text the pipeline encoded; it encoded "
            f"{decoded_text(seen, tokenizer, stream)!r}. Pass the prompt of this image (or none)"
        )
    mask = list(windowed["attention_mask"])
    keys = stream.keys(mask, num_keys if num_keys is not None else window)
    window_offsets, full_offsets = (
        (windowed["offset_mapping"], full["offset_mapping"])
        if fast
        else (
            _searched_offsets(tokenizer, encoded, ids),
            _searched_offsets(tokenizer, encoded, full["input_ids"]),
        )
    )
    kept = [_chars(window_offsets[p], shift, len(text)) if p is not None else None for p in keys]
    content = [c for c in (_chars(o, shift, len(text)) for o in full_offsets) if c is not None]
    kept_keys = [(k, c) for k, c in enumerate(kept) if c is not None]
    in_window, in_text = _Overlaps([c for _, c in kept_keys]), _Overlaps(content)
    spans = []
    for match in _SPAN.finditer(text):
        start, end = match.span()
        tokens = tuple(kept_keys[i][0] for i in in_window.within(start, end))
        needed = len(in_text.within(start, end))
        spans.append(
            Span(
                text=match.group(),
                start=start,
                end=end,
                tokens=tuple(stream.offset + k for k in tokens),
                is_word=_WORD.fullmatch(match.group()) is not None,
                available=bool(tokens) and len(tokens) == needed,
            )
        )
    unseen = [sp for sp in spans if sp.is_word and not sp.available]
    if unseen:
        first = unseen[0].start
        excerpt = text[first : first + 40] + ("..." if len(text) > first + 40 else "")
        warnings.warn(
            f"the prompt has {len(content)} tokens but the tokenizer keeps {len(kept_keys)}: {len(unseen)} "
            f"words from {excerpt!r} on are past the limit and marked unavailable",
            stacklevel=3,
        )
    end_position = max(k for k, p in enumerate(keys) if p is not None and mask[p])
    keys_of_stream = StreamKeys(stream.name, stream.offset, len(keys), end_position)
    return PromptLayout(text, tuple(spans), (keys_of_stream,))


class _Overlaps:
    """Character ranges of tokens in text order (starts and ends both non-decreasing), and which of them
    overlap a range: two binary searches, so a prompt's words are matched in ``n log n``, not ``n**2``."""

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        self.starts = [a for a, _ in ranges]
        self.ends = [b for _, b in ranges]

    def within(self, start: int, end: int) -> range:
        """Indices of the ranges ``(a, b)`` with ``a < end`` and ``b > start``."""
        return range(bisect.bisect_right(self.ends, start), bisect.bisect_left(self.starts, end))


def _added_ids(tokenizer: Any) -> list[int]:
    """The ids a tokenizer adds around any text (CLIP's start and end, T5's end, ChatGLM's [gMASK] sop)."""
    return [int(i) for i in tokenizer("", add_special_tokens=True)["input_ids"]]


def _searched_offsets(tokenizer: Any, text: str, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Character offsets of ``ids`` in ``text`` for a tokenizer that cannot report them (a slow,
    Python tokenizer such as Kolors' ChatGLM one): each token's text, found in order, case-insensitively;
    ``(0, 0)`` for special tokens and for pieces that are not found as they are."""
    special = {*tokenizer.all_special_ids, *_added_ids(tokenizer)}
    folded = text.casefold()
    offsets, cursor = [], 0
    for i in ids:
        piece = (
            "" if i in special else tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(i)])
        )
        piece = piece.strip().casefold()
        start = folded.find(piece, cursor) if piece else -1
        if start < 0:
            offsets.append((0, 0))
            continue
        offsets.append((start, start + len(piece)))
        cursor = start + len(piece)
    return offsets


def _chars(offset: Sequence[int], shift: int, length: int) -> tuple[int, int] | None:
    """A token's character range in the user's text, or None for special, padding and template tokens."""
    a, b = int(offset[0]) + shift, int(offset[1]) + shift
    if a == b or b <= 0 or a >= length:
        return None
    return a, b


def decoded_text(window: TokenWindow, tokenizer: Any, stream: TextStream = DEFAULT_STREAM) -> str:
    """The prompt text behind a window's ids (lower case where the tokenizer lower-cases), without the
    stream's template."""
    ids = [i for i, m in zip(window.ids, window.mask, strict=True) if m]
    template = stream.template
    if not (template.prefix or template.suffix):  # the tokenizer's own tokens frame the prompt
        framing = {tokenizer.pad_token_id, *_added_ids(tokenizer)}  # padding on either side (CogView4: left)
        ids = [i for i in ids if i not in framing]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    prefixes = (template.prefix, _plain(template.prefix, tokenizer)) if template.prefix else ()
    suffixes = (template.suffix, _plain(template.suffix, tokenizer)) if template.suffix else ()
    text = next((text[len(p) :] for p in prefixes if text.startswith(p)), text)
    text = next((text[: len(text) - len(s)] for s in suffixes if text.endswith(s)), text)
    return text.strip() if template.lowercase else text


def _plain(part: str, tokenizer: Any) -> str:
    """A template part as decoding shows it: its special tokens dropped."""
    ids = tokenizer(part, add_special_tokens=False)["input_ids"]
    return str(tokenizer.decode(ids, skip_special_tokens=True))


def layout_from_ids(
    input_ids: Sequence[int], tokenizer: Any, stream: TextStream = DEFAULT_STREAM
) -> PromptLayout:
    """The layout of ids whose text is unknown: the text is decoded (lower case, as the tokenizer saw it)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    window = TokenWindow(tuple(int(i) for i in input_ids), tuple(int(i != pad) for i in input_ids))
    return align_streams([StreamText(stream, tokenizer, window, len(input_ids))], None)


def align_streams(texts: Sequence[StreamText], prompt: str | None) -> PromptLayout:
    """One layout of every stream's window for the same prompt.

    With ``prompt`` each window is aligned with it (and checked against its ids). Without it, the text is
    decoded from a window's ids: the first decoded text that every window's tokenizer turns into that
    window's ids gives words in all of them; failing that, words come from the first window with ids
    and the others keep their positions without words (their tokenizers saw the text differently).
    """
    known = [t for t in texts if t.window is not None and t.tokenizer is not None]
    if prompt is not None or not known:
        return combine([_aligned(prompt, t) for t in texts])
    layout = _decoded(texts, known)
    first = known[0]
    keys = next(s for s in layout.streams if s.name == first.stream.name)
    if keys.end_position == keys.num_positions - 1 and first.stream.keys is every_position:
        warnings.warn(
            f"the prompt fills the tokenizer's {keys.num_positions}-token window, so words past it may have "
            "been cut; pass prompt=... to heat_maps() to know which",
            stacklevel=3,
        )
    return layout


def _decoded(texts: Sequence[StreamText], known: Sequence[StreamText]) -> PromptLayout:
    candidates = [decoded_text(t.window, t.tokenizer, t.stream) for t in known if t.window is not None]
    for text in dict.fromkeys(candidates):
        try:
            return combine([_aligned(text, t) for t in texts])
        except ValueError:
            continue
    try:
        return combine([_aligned(candidates[0], t) if t is known[0] else _unworded(t) for t in texts])
    except ValueError:
        warnings.warn(
            "the prompt's words could not be read back from the token ids (the pipeline changed the "
            "text before tokenizing it); maps are by token position: pass prompt=... to heat_maps()",
            stacklevel=4,
        )
        return combine([_unworded(t) for t in texts])


def _aligned(prompt: str | None, text: StreamText) -> PromptLayout:
    if text.tokenizer is None or (text.window is None and prompt is None):
        return _unworded(text)
    assert prompt is not None
    ids = text.window.ids if text.window is not None else None
    window = None if ids is not None else text.num_keys
    return layout_from_text(prompt, text.tokenizer, ids, text.stream, window, text.num_keys)


def _unworded(text: StreamText) -> PromptLayout:
    """A window's positions without words: padding dropped when the ids are known."""
    stream = text.stream
    if text.window is None:
        return PromptLayout("", (), (StreamKeys(stream.name, stream.offset, text.num_keys, None),))
    keys = stream.keys(text.window.mask, text.num_keys)
    end = max((k for k, p in enumerate(keys) if p is not None and text.window.mask[p]), default=len(keys) - 1)
    return PromptLayout("", (), (StreamKeys(stream.name, stream.offset, len(keys), end),))


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
