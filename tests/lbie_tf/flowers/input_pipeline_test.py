"""Tests for the flowers caption tokenizer and image parsers."""

import numpy as np
import pytest
import tensorflow as tf

from lbie_tf.flowers import input_pipeline

CAPTIONS = [
    "This flower has RED petals, and a yellow center.",
    "the petals are red",
    "  Petals: white; stamen -- long!  ",
    "Pétales rouges 2 fois",
    "red" * 3,
]


def test_vocabulary_is_most_frequent_first_then_alphabetical():
    tokens = input_pipeline.build_vocabulary(["b a a", "c b a"], min_count=1)
    assert tokens == ["<pad>", "<unk>", "a", "b", "c"]
    assert input_pipeline.build_vocabulary(["b a a", "c b a"], 2) == [
        "<pad>",
        "<unk>",
        "a",
        "b",
    ]


def test_python_words_and_graph_tokenizer_agree():
    tokens = input_pipeline.build_vocabulary(CAPTIONS)
    ids = {token: index for index, token in enumerate(tokens)}
    encoder = input_pipeline.CaptionEncoder(tokens, max_tokens=12)
    encoded = encoder(tf.constant(CAPTIONS)).numpy()
    for caption, row in zip(CAPTIONS, encoded, strict=True):
        words = input_pipeline.caption_words(caption)[:12]
        expected = [ids[word] for word in words]
        expected += [0] * (12 - len(expected))
        assert row.tolist() == expected, caption


def test_non_ascii_letters_separate_words():
    assert input_pipeline.caption_words("Pétales rouges") == [
        "p",
        "tales",
        "rouges",
    ]


def test_unknown_words_read_as_unk_and_long_captions_are_cut():
    encoder = input_pipeline.CaptionEncoder(["<pad>", "<unk>", "red"], 4)
    ids = encoder(tf.constant(["zebra red quokka", "red " * 50])).numpy()
    assert ids.tolist() == [[1, 2, 1, 0], [2, 2, 2, 2]]


@pytest.mark.parametrize("caption", ["", "   ", ", . ;", "éé"])
def test_a_caption_without_words_is_an_error(caption):
    encoder = input_pipeline.CaptionEncoder(["<pad>", "<unk>", "red"], 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one"):
        encoder(tf.constant(["red", caption]))


def test_a_vocabulary_must_start_with_pad_and_unk():
    with pytest.raises(ValueError, match="<pad>, <unk>"):
        input_pipeline.CaptionEncoder(["red", "<unk>"], 4)


def test_model_inputs_round_trip_to_rgb():
    rgb = np.random.default_rng(0).uniform(size=(5, 7, 3)).astype(np.float32)
    lightness, ab = input_pipeline.to_model_inputs(rgb)
    assert lightness.shape == (5, 7, 1) and ab.shape == (5, 7, 2)
    assert np.all(np.abs(lightness) <= 1.0 + 1e-6)
    np.testing.assert_allclose(
        input_pipeline.to_rgb(lightness, ab), rgb, atol=1e-4
    )


def test_augment_is_a_function_of_its_seed():
    image = tf.random.stateless_uniform([20, 20, 3], seed=[1, 2])
    seed = tf.constant([3, 4], tf.int64)
    first = input_pipeline.augment(image, 16, seed)
    assert first.shape == (16, 16, 3)
    np.testing.assert_array_equal(
        first, input_pipeline.augment(image, 16, seed)
    )
    others = [
        input_pipeline.augment(image, 16, tf.constant([3, k], tf.int64))
        for k in range(5, 10)
    ]
    assert any(not np.array_equal(first, other) for other in others)


def test_resize_area_ignores_the_aspect_ratio():
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, 30:] = 255
    resized = input_pipeline.resize_area(image, 10).numpy()
    assert resized.shape == (10, 10, 3)
    np.testing.assert_allclose(resized[:, :5], 0.0)
    np.testing.assert_allclose(resized[:, 5:], 1.0)
