"""The CoSaL vocabulary: token ids, multi-word names and bad text."""

import pytest

from data_builders.cosal import vocabulary


def test_twenty_tokens_in_the_spec_order():
    assert vocabulary.VOCABULARY_SIZE == 20
    assert vocabulary.TOKENS[:9] == vocabulary.SHAPE_NAMES
    assert vocabulary.TOKENS[9:15] == vocabulary.COLOR_NAMES
    assert vocabulary.TOKENS[15:] == ("is", "above", "below", "left", "right")


def test_multi_word_names_are_single_tokens_longest_first():
    ids = vocabulary.sentence_to_ids("Light  green below half fat ellipse.")
    assert ids == [10, 17, 1]
    assert (
        vocabulary.ids_to_sentence(ids) == "light green below half fat ellipse"
    )
    assert vocabulary.sentence_to_ids("fat ellipse is red") == [2, 15, 11]


@pytest.mark.parametrize(
    "sentence, word",
    [
        ("circle is purple", "purple"),
        ("circleis red", "circleis"),
        ("circle is reddish", "reddish"),
        ("the circle is red", "the"),
    ],
)
def test_unknown_words_are_named(sentence, word):
    with pytest.raises(ValueError, match=f"Unknown word '{word}'"):
        vocabulary.sentence_to_ids(sentence)


def test_a_description_is_nine_sentences_of_three_tokens():
    nine = ". ".join(["circle is red"] * 9)
    assert vocabulary.text_to_sentence_ids(nine) == [[8, 15, 11]] * 9
    with pytest.raises(ValueError, match="exactly 9 sentences, got 8"):
        vocabulary.text_to_sentence_ids(". ".join(["circle is red"] * 8))
    with pytest.raises(ValueError, match="exactly 3 tokens"):
        vocabulary.text_to_sentence_ids(nine + " is")
