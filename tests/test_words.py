"""Words <-> token positions, checked against the tokenizer's own tokens and hand-written expectations."""

import pytest

from daam_widget import testing
from daam_widget._words import layout_from_ids, layout_from_text


@pytest.fixture(scope="module")
def tokenizer():
    return testing.clip_tokenizer()


def _ids(tokenizer, text):
    return tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids


def test_sub_word_pieces_merge_into_their_word(tokenizer):
    layout = layout_from_text("a zebra hat", tokenizer)
    pieces = tokenizer.tokenize("zebra")
    assert len(pieces) > 1  # not in the vocabulary: split into pieces
    zebra = layout.find("zebra")
    assert zebra.tokens == tuple(range(2, 2 + len(pieces)))
    assert layout.find("hat").tokens == (2 + len(pieces),)


def test_case_is_kept_in_text_and_ignored_in_lookup(tokenizer):
    layout = layout_from_text("A Red DOG", tokenizer)
    assert layout.words == ("A", "Red", "DOG")
    assert layout.find("dog").tokens == (3,)


def test_punctuation_is_a_span_but_not_a_word(tokenizer):
    layout = layout_from_text("a dog, on a hat!", tokenizer)
    assert [s.text for s in layout.spans] == ["a", "dog", ",", "on", "a", "hat", "!"]
    assert [s.is_word for s in layout.spans] == [True, True, False, True, True, True, False]
    assert layout.words == ("a", "dog", "on", "a", "hat")
    assert layout.spans[2].tokens == (3,)


def test_apostrophes_stay_inside_words(tokenizer):
    layout = layout_from_text("the dog's hat", tokenizer)
    assert layout.words == ("the", "dog's", "hat")
    assert len(layout.find("dog's").tokens) == len(tokenizer.tokenize("dog's"))


def test_special_positions_are_kept_apart_from_words(tokenizer):
    layout = layout_from_text("a red dog", tokenizer)
    assert layout.end_position == 4
    assert layout.used_positions == (0, 1, 2, 3, 4)
    assert all(0 not in s.tokens and 4 not in s.tokens for s in layout.spans)


def test_unknown_word_lists_the_words(tokenizer):
    layout = layout_from_text("a dog on a hat", tokenizer)
    with pytest.raises(KeyError, match="'dgo' is not a word of the prompt; words are: a, dog, on, a, hat"):
        layout.find("dgo")


def test_repeated_word_says_how_to_pick_one(tokenizer):
    layout = layout_from_text("a dog on a hat", tokenizer)
    with pytest.raises(KeyError, match=r"'a' occurs 2 times.*maps\.word\('a', occurrence\)"):
        layout.find("a")
    assert layout.find("a", 1).tokens == (4,)
    with pytest.raises(KeyError, match=r"occurrence must be 0\.\.1"):
        layout.find("a", 2)


def test_long_prompt_warns_and_marks_cut_words_unavailable(tokenizer):
    text = " ".join(["dog"] * 80) + " cat"
    with pytest.warns(UserWarning, match="keeps 75"):
        layout = layout_from_text(text, tokenizer, _ids(tokenizer, text))
    assert layout.end_position == 76
    assert layout.find("dog", 74).available
    assert not layout.spans[-1].available
    with pytest.raises(KeyError, match="'cat' was cut off"):
        layout.find("cat")


def test_ids_that_fill_the_window_warn_that_words_may_be_cut(tokenizer):
    text = " ".join(["dog"] * 80)
    with pytest.warns(UserWarning, match="fills the tokenizer's 77-token window"):
        layout = layout_from_ids(_ids(tokenizer, text), tokenizer)
    assert len(layout.words) == 75


def test_text_that_is_not_what_was_encoded_is_refused(tokenizer):
    with pytest.raises(ValueError, match="is not the text the pipeline encoded; it encoded 'a red dog'"):
        layout_from_text("a blue dog", tokenizer, _ids(tokenizer, "a red dog"))


def test_decoded_ids_give_lower_case_words(tokenizer):
    layout = layout_from_ids(_ids(tokenizer, "A Red dog, on a HAT."), tokenizer)
    assert layout.words == ("a", "red", "dog", "on", "a", "hat")
    assert layout.find("hat").tokens == (7,)


def test_layout_round_trips_through_json(tokenizer):
    from daam_widget._words import PromptLayout

    layout = layout_from_text("a zebra, on a hat", tokenizer)
    assert PromptLayout.from_json(layout.to_json()) == layout


def test_a_long_prompt_warns_once_in_a_line_with_the_number_of_words_cut_off():
    from daam_widget.toy._model import tokenizer

    prompt = " ".join(["a red circle and a blue square"] * 2000)  # 14,000 words, 62 KB
    with pytest.warns(UserWarning) as caught:
        layout = layout_from_text(prompt, tokenizer())
    (message,) = [str(w.message) for w in caught]
    seen = [s.available for s in layout.spans if s.is_word]
    assert seen == [True] * 30 + [False] * (14_000 - 30), "the toy keeps 30 tokens, one a word"
    assert "13970 words from 'circle and a blue square" in message and len(message) < 250
