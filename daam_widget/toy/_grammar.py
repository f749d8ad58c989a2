"""The toy world's captions parsed exactly: parts of speech and head-dependent relations, without spaCy.

``_world.describe`` writes every caption from one grammar::

    caption := [("a photo" | "a picture" | "an image") "of"] body
    body    := np | np relation np ["and" np] | np "and" np | np "," np "and" np
    np      := ("a" | "an") [size] colour shape
    relation:= "above" | "below" | "to the left of" | "to the right of"

so its dependency tree is known. Labels and attachments are those of spaCy's English pipelines (ClearNLP
labels, coordination chained from the first conjunct, ``cc`` on the conjunct before ``and``), so that a
table from the toy's own parse reads like one from ``--nlp en_core_web_sm``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._world import COLORS, SHAPES, SIZES

PART_OF_SPEECH: dict[str, str] = {
    **dict.fromkeys(("a", "an", "the"), "DET"),
    **dict.fromkeys(("of", "to", "above", "below"), "ADP"),
    **dict.fromkeys(("photo", "picture", "image", "left", "right", *SHAPES), "NOUN"),
    **dict.fromkeys(("small", "big", *COLORS), "ADJ"),
    "and": "CCONJ",
}
"""Universal POS tag of every word of the world (``WORDS``), as spaCy's ``token.pos_`` names them."""

Pair = tuple[int, int, str]
"""(head word index, dependent word index, relation)."""


class _Parser:
    """A recursive-descent parser of ``describe``'s grammar over a caption's words (punctuation dropped)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = [w.lower() for w in words]
        self.at = 0
        self.pairs: list[Pair] = []

    def peek(self, *expected: str) -> bool:
        return self.at < len(self.words) and self.words[self.at] in expected

    def take(self, *expected: str) -> int:
        if not self.peek(*expected):
            raise ValueError(f"word {self.at} is not one of {expected}")
        self.at += 1
        return self.at - 1

    def noun_phrase(self) -> int:
        article = self.take("a", "an")
        size = self.take(*SIZES) if self.peek(*SIZES) else None
        color = self.take(*COLORS)
        shape = self.take(*SHAPES)
        self.pairs += [(shape, article, "det"), (shape, color, "amod")]
        if size is not None:
            self.pairs.append((shape, size, "amod"))
        return shape

    def relation(self, head: int) -> int:
        """The relation after ``head``'s phrase: the preposition whose object is the next phrase."""
        if self.peek("above", "below"):
            preposition = self.take("above", "below")
            self.pairs.append((head, preposition, "prep"))
            return preposition
        to = self.take("to")
        the = self.take("the")
        side = self.take("left", "right")
        of = self.take("of")
        self.pairs += [(head, to, "prep"), (to, side, "pobj"), (side, the, "det"), (side, of, "prep")]
        return of

    def conjunct(self, first: int) -> None:
        """``and np`` after ``first``."""
        self.pairs.append((first, self.take("and"), "cc"))
        self.pairs.append((first, self.noun_phrase(), "conj"))

    def caption(self) -> list[Pair]:
        if (
            self.peek("a", "an")
            and self.at + 1 < len(self.words)
            and self.words[1] in ("photo", "picture", "image")
        ):
            article = self.take("a", "an")
            noun = self.take("photo", "picture", "image")
            of = self.take("of")
            self.pairs += [(noun, article, "det"), (noun, of, "prep")]
            self.pairs.append((of, self.body(), "pobj"))
        else:
            self.body()
        if self.at != len(self.words):
            raise ValueError(f"words left over from {self.at}")
        return sorted(self.pairs)

    def body(self) -> int:
        first = self.noun_phrase()
        if self.peek("above", "below", "to"):
            preposition = self.relation(first)
            second = self.noun_phrase()
            self.pairs.append((preposition, second, "pobj"))
            if self.peek("and"):
                self.conjunct(second)
        elif self.peek("and"):
            self.conjunct(first)
        elif self.peek("a", "an"):  # "np, np and np": the comma is not a word
            second = self.noun_phrase()
            self.pairs.append((first, second, "conj"))
            self.conjunct(second)
        return first


def caption_dependencies(words: Sequence[str]) -> list[Pair] | None:
    """Every head-dependent pair of a toy caption's words (``HeatMaps.words``), sorted; ``None`` when the
    words are not a caption of the world's grammar."""
    try:
        return _Parser(words).caption()
    except ValueError:
        return None
