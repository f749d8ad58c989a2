"""Offline tokenizers for the tiny pipelines: CLIP, T5 and Gemma, built from a word list in code."""

from __future__ import annotations

import string

from transformers import CLIPTokenizer, GemmaTokenizer, T5Tokenizer

from ..toy._tokenizer import make_clip_tokenizer, make_t5_tokenizer

WORDS = (
    "a an the of on in and with to left right above below photo picture small big "
    "dog cat hat circle square triangle star red green blue yellow purple orange"
).split()


def clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """CLIP's byte-level BPE: each word of ``WORDS`` is one token, any other word splits into pieces."""
    return make_clip_tokenizer(WORDS, model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """T5's Unigram tokenizer: each word of WORDS is one "▁word" piece, any other word splits into letters
    (either case) and punctuation marks, as in T5's own vocabulary; other characters are ``<unk>``."""
    return make_t5_tokenizer(WORDS, model_max_length=model_max_length)


def gemma_tokenizer(model_max_length: int = 2048) -> GemmaTokenizer:
    """Gemma's BPE tokenizer: "<bos>" first, no EOS, a space becomes "▁" and sticks to the next word (so the
    first word has none); each word of WORDS is one token either way, other words split into letters, other
    characters fall back to byte tokens. The merges are chains, "▁" words and longer words first, so that no
    merge of a shorter word breaks the chain of a longer one (see daam_widget.toy._tokenizer)."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<0x{b:02X}>" for b in range(256))]
    tokens += ["▁", *string.ascii_lowercase]
    merges: list[tuple[str, str]] = []
    for word in sorted({p + w for w in WORDS for p in ("▁", "")}, key=lambda w: (w[0] != "▁", -len(w))):
        left = word[0]
        for right in word[1:]:
            if (left, right) not in merges:
                merges.append((left, right))
            left += right
            tokens.append(left)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return GemmaTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # (left, right) pairs, as in CLIP's tokenizer
        add_bos_token=True,
        padding_side="right",
        model_max_length=model_max_length,
    )
