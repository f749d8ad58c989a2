"""Real CLIP (byte-level BPE) and T5 (Unigram) tokenizers built from a word list, without files or network.

The merges are left-to-right chains (``("d", "o")``, ``("do", "g</w>")``), one chain per word, longest
words first (so that no shorter word's first merge, such as ``("a", "n")`` of "and", breaks the chain of a
longer word containing it, such as "orange"). So every listed word is a single token, and any other word
still tokenizes, into sub-word pieces, exactly as CLIP's tokenizer would split it with this vocabulary.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from functools import cache

from transformers import CLIPTokenizer, T5Tokenizer

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


@cache
def byte_alphabet() -> tuple[str, ...]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for the bytes 0..255, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    shifted = 0
    alphabet = []
    for byte in range(256):
        if byte in printable:
            alphabet.append(chr(byte))
        else:
            alphabet.append(chr(256 + shifted))
            shifted += 1
    return tuple(alphabet)


def clip_vocab_and_merges(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merge list in CLIP's layout: bytes, bytes ending a word, merged pieces, specials."""
    alphabet = byte_alphabet()
    tokens = [*alphabet, *(c + "</w>" for c in alphabet)]
    merges: list[tuple[str, str]] = []
    seen_merges: set[tuple[str, str]] = set()
    for word in sorted(dict.fromkeys(words), key=len, reverse=True):
        encoded = "".join(alphabet[b] for b in word.lower().encode("utf-8"))
        pieces = [*encoded[:-1], encoded[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            if (left, right) not in seen_merges:
                seen_merges.add((left, right))
                merges.append((left, right))
                tokens.append(left + right)
            left = left + right
    vocab: dict[str, int] = {}
    for token in [*tokens, *SPECIAL_TOKENS]:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def make_clip_tokenizer(words: Iterable[str], model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIPTokenizer whose vocabulary holds ``words`` as whole tokens (see the module docstring)."""
    words = list(words)
    vocab, merges = clip_vocab_and_merges(words)
    # transformers' annotation says list[str], but its BPE model takes (left, right) pairs (strings raise).
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)  # type: ignore[arg-type]
    split = [w for w in words if len(tok.tokenize(w)) != 1]
    if split:
        raise ValueError(f"these words would not be single tokens: {split}; words must be lowercase")
    return tok


def make_t5_tokenizer(words: Iterable[str], model_max_length: int = 512) -> T5Tokenizer:
    """T5's Unigram tokenizer: each of ``words`` is one "▁word" piece, any other word splits into letters
    (either case) and punctuation marks, as in T5's own vocabulary; other characters are ``<unk>``."""
    letters = string.ascii_letters + string.punctuation
    letter_pieces = dict.fromkeys([*("▁" + c for c in letters), *letters], -5.0)
    vocab = {
        "<pad>": 0.0,
        "</s>": 0.0,
        "<unk>": 0.0,
        **letter_pieces,
        **dict.fromkeys(("▁" + w for w in words), -1.0),
    }
    return T5Tokenizer(vocab=list(vocab.items()), extra_ids=0, model_max_length=model_max_length)
