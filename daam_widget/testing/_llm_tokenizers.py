"""Offline tokenizers with chat templates for the LLM-encoded families, built from a word list in code.

Qwen2.5-VL's (Qwen-Image), Qwen3's (Z-Image, Flux.2 klein) and Mistral Small 3's (Flux.2) byte-level BPE
tokenizers, with their own pre-tokenizer split patterns, special tokens and untrimmed offsets (an offset
of "Ġdog" covers its space, as in the real ones). Whole words are looked up before any merge (BPE's
``ignore_merges``, as Mistral's Tekken tokenizer does), so each word of ``WORDS`` and of
``TEMPLATE_WORDS`` is one token, with or without the space marker "Ġ"; any other word merges along
prefix chains of those words, down to single bytes (all 256 byte-level characters are in the vocabulary).
The chat templates render text-only messages as the real ones do; a message's content is a string or a
list of ``{"type": "text", "text": ...}`` parts (other parts are dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

from ..toy._tokenizer import byte_alphabet
from ._tokenizers import WORDS

TEMPLATE_WORDS = tuple(
    dict.fromkeys(
        (
            # Qwen's chat roles and Qwen2.5-VL's default system message
            "system user assistant You are a helpful "
            # Qwen-Image's system prompt
            "Describe the image by detailing color shape size texture quantity text spatial relationships of "
            "objects and background "
            # Flux.2's system message
            "an AI that reasons about descriptions give structured responses focusing on object attribution "
            "actions without speculation"
        ).split()
    )
)
"""The words of the chat roles and system messages the pipelines render, each one token."""

_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_TEXT_MACRO = (
    "{%- macro text(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for part in content if part.type == 'text' -%}{{- part.text -}}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
)

QWEN2_5_VL_CHAT_TEMPLATE = (
    _TEXT_MACRO + "{%- for message in messages -%}"
    "{%- if loop.first and message.role != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + text(message.content) + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
"""Qwen2.5-VL's: a default system message unless the first message is one; generation prompt
``<|im_start|>assistant\\n``."""

QWEN3_CHAT_TEMPLATE = (
    _TEXT_MACRO + "{%- for message in messages -%}"
    "{%- set content = text(message.content) -%}"
    "{%- if message.role == 'assistant' -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
)
"""Qwen3's: no default system message, answers lose their reasoning (up to ``</think>``; the real one keeps
it after the last user message), and ``enable_thinking=False`` appends an empty
``<think>\\n\\n</think>\\n\\n`` to the generation prompt."""

MISTRAL_SMALL_3_CHAT_TEMPLATE = (
    _TEXT_MACRO + "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' -%}"
    "{{- '[SYSTEM_PROMPT]' + text(message.content) + '[/SYSTEM_PROMPT]' -}}"
    "{%- elif message.role == 'user' -%}"
    "{{- '[INST]' + text(message.content) + '[/INST]' -}}"
    "{%- else -%}"
    "{{- text(message.content) + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
"""Mistral Small 3.x's: ``<s>[SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT][INST]{user}[/INST]``, answers end
with ``</s>``, no generation prompt. Unlike the real one, no default system message when none is given."""


def _byte_level_bpe(
    split_pattern: str, special_tokens: Sequence[str], extra_pieces: Sequence[str] = ()
) -> Tokenizer:
    """A byte-level BPE tokenizer over the 256 byte characters, ``WORDS`` and ``TEMPLATE_WORDS`` (each with
    and without "Ġ", with their prefix chains) and ``extra_pieces``; then ``special_tokens``, never split."""
    alphabet = byte_alphabet()
    space = alphabet[ord(" ")]
    words = {prefix + word for word in (*WORDS, *TEMPLATE_WORDS) for prefix in (space, "")}
    tokens = [*alphabet, *extra_pieces]
    merges: dict[tuple[str, str], None] = {}
    for word in sorted(words, key=lambda w: (-len(w), w)):
        left = word[0]
        for right in word[1:]:
            merges.setdefault((left, right))
            left += right
            tokens.append(left)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(BPE(vocab, list(merges), ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    return tokenizer


def _qwen_tokenizer(chat_template: str, added_tokens: Iterable[str] = ()) -> Qwen2Tokenizer:
    alphabet = byte_alphabet()
    tokenizer = _byte_level_bpe(
        _QWEN_SPLIT, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), extra_pieces=(alphabet[10] * 2,)
    )
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in added_tokens])
    return Qwen2Tokenizer(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
    )


def qwen2_5_vl_tokenizer() -> Qwen2Tokenizer:
    """Qwen2.5-VL's tokenizer (Qwen-Image's): specials ``<|endoftext|>`` (the pad token), ``<|im_start|>``,
    ``<|im_end|>`` (EOS), no BOS, right padding; "\\n\\n" is one token ("ĊĊ") as in the real vocabulary."""
    return _qwen_tokenizer(QWEN2_5_VL_CHAT_TEMPLATE)


def qwen3_tokenizer() -> Qwen2Tokenizer:
    """Qwen3's tokenizer (Z-Image's and Flux.2 klein's): Qwen2.5-VL's, with ``<think>`` and ``</think>`` as
    added (not special) tokens and Qwen3's chat template."""
    return _qwen_tokenizer(QWEN3_CHAT_TEMPLATE, added_tokens=("<think>", "</think>"))


def mistral_small_3_tokenizer() -> PreTrainedTokenizerFast:
    """Mistral Small 3's Tekken tokenizer (Flux.2's), as transformers converts it: Tekken's split pattern,
    specials ``<unk>``, ``<s>``, ``</s>``, ``[INST]``, ``[/INST]``, ``[IMG]``, ``<pad>``, ``[SYSTEM_PROMPT]``,
    ``[/SYSTEM_PROMPT]``, no BOS added outside the chat template, right padding.

    Flux.2 declares a ``PixtralProcessor`` (which needs torchvision) but only calls
    ``apply_chat_template(conversations, tokenize=True, return_dict=True, padding="max_length", ...)``,
    which this tokenizer answers the same way for text-only conversations."""
    specials = "<unk> <s> </s> [INST] [/INST] [IMG] <pad> [SYSTEM_PROMPT] [/SYSTEM_PROMPT]".split()
    tokenizer = _byte_level_bpe(_TEKKEN_SPLIT, specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        chat_template=MISTRAL_SMALL_3_CHAT_TEMPLATE,
    )
